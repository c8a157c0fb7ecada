// Command gen writes a synthetic stack and its equivalent Helm chart for the
// render benchmark:
//
//	go run ./bench/render/gen -n 1000 -out DIR
//
// writes DIR/stack/services.yaml (with its partials and manifests) and
// DIR/chart (Chart.yaml, values.yaml, values-ENV.yaml, templates/). DIR must
// not hold an earlier stack or chart: generation never deletes anything.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	renderbench "github.com/codex-k8s/codex-bootstrap/bench/render"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	n := fs.Int("n", 100, "number of services")
	out := fs.String("out", "", "output directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *n < 1 {
		return fmt.Errorf("usage: gen -n N -out DIR")
	}
	for _, sub := range []string{"stack", "chart"} {
		if _, err := os.Stat(filepath.Join(*out, sub)); err == nil {
			return fmt.Errorf("%s already exists: pick an empty directory", filepath.Join(*out, sub))
		}
	}
	if err := renderbench.WriteStack(filepath.Join(*out, "stack"), *n); err != nil {
		return fmt.Errorf("write stack: %w", err)
	}
	if err := renderbench.WriteChart(filepath.Join(*out, "chart"), *n); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}
