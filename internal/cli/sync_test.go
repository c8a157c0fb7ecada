package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncRefusals: what sync refuses before it contacts a cluster, and
// with which exit code.
func TestSyncRefusals(t *testing.T) {
	const shop = "../../examples/new-project/services.yaml"
	outside := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(outside, "passwd")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no env", []string{"sync", "--config", shop}, ExitUsage, "--env is required"},
		{"two folders", []string{"sync", "--config", shop, "--env", "dev", "a", "b"}, ExitUsage, "at most one folder"},
		{"no such folder", []string{"sync", "--config", shop, "--env", "dev", "/nonexistent/src"}, ExitUsage, "source folder"},
		{"production", []string{"sync", "--config", shop, "--env", "prod", t.TempDir()}, ExitFailure, "sync refused: environment prod: production environment"},
		{"slot needed", []string{"sync", "--config", shop, "--env", "ai-slot", t.TempDir()}, ExitUsage, "pass --slot"},
		{"unknown env", []string{"sync", "--config", shop, "--env", "qa", t.TempDir()}, ExitUsage, `unknown environment "qa"`},
		{"link out of the tree", []string{"sync", "--config", shop, "--env", "dev", outside}, ExitFailure, "passwd: symbolic link to /etc/passwd leaves the source tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
