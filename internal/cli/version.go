package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is stamped at build time with
// -ldflags "-X github.com/codex-k8s/codex-bootstrap/internal/cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// NewCmdVersion builds `version`.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of codex-bootstrap",
		Long:  "Version prints the version of this codex-bootstrap build and of the Go toolchain that built it.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bi, _ := debug.ReadBuildInfo()
			goVersion := "unknown"
			if bi != nil {
				goVersion = bi.GoVersion
			}
			_, err := fmt.Fprintf(f.IO.Out, "codex-bootstrap %s (%s)\n", version(), goVersion)
			return err
		},
	}
}
