package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// ReconcileOptions are the inputs of `reconcile`.
type ReconcileOptions struct {
	IO         IOStreams
	LookupEnv  func(string) (string, bool)
	Factory    *Factory
	ConfigPath string
	Env        string
	Slot       string
	DryRun     bool
	Output     string
	OutputDir  string
}

// NewCmdReconcile builds `reconcile`. runF replaces the run function in tests.
func NewCmdReconcile(f *Factory, configPath func() string, runF func(context.Context, *ReconcileOptions) error) *cobra.Command {
	opts := &ReconcileOptions{}
	cmd := &cobra.Command{
		Use:   "reconcile --env NAME [--slot N] [--dry-run [-o text|json] [--output-dir DIR]]",
		Short: "Deploy an environment from services.yaml, in order, waiting for readiness",
		Long: `Reconcile renders the stack for one environment and brings the cluster to it.

The plan is a graph: a node starts when its dependencies are ready and every
node of the groups before it is ready (default group order: stateful ->
migrations -> internal -> edge -> frontend). Nodes of one level may run at the
same time.

With --dry-run nothing is contacted: the plan is printed (namespace, groups in
order, nodes with their dependencies and the objects each applies), as text
or, with -o json, as exactly one JSON document on stdout (logs go to stderr).
With --output-dir the rendered manifests are also written there, one folder
per step in apply order. Secret values never appear in a plan.

A slot environment (one namespace per task) needs --slot; other environments
refuse it.

Exit codes: 0 success, 1 invalid input or failed operation, 2 usage error,
130 interrupted.`,
		Example: `  # the plan of the staging environment, as text
  codex-bootstrap reconcile --env staging --dry-run

  # a task slot, as JSON, with the rendered manifests written to a folder
  codex-bootstrap reconcile --env ai-slot --slot 3 --dry-run -o json --output-dir out/`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.LookupEnv = f.LookupEnv
			opts.Factory = f
			opts.ConfigPath = configPath()
			if opts.Env == "" {
				return UsageErrorf("--env is required")
			}
			switch opts.Output {
			case "text", "json":
			default:
				return UsageErrorf("invalid --output %q: use text or json", opts.Output)
			}
			if !opts.DryRun && (cmd.Flags().Changed("output") || opts.OutputDir != "") {
				return UsageErrorf("--output and --output-dir are for --dry-run")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runReconcile(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Env, "env", "", "environment to reconcile (required)")
	fl.StringVar(&opts.Slot, "slot", "", "slot of a slot environment, e.g. a task number")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan instead of applying it; contacts nothing")
	fl.StringVarP(&opts.Output, "output", "o", "text", "plan format with --dry-run: text or json")
	fl.StringVar(&opts.OutputDir, "output-dir", "", "with --dry-run, also write the rendered manifests to this folder")
	return cmd
}

func runReconcile(ctx context.Context, opts *ReconcileOptions) error {
	p, err := buildPlan(ctx, opts)
	if err != nil {
		return err
	}
	if !opts.DryRun {
		return UsageErrorf("applying to a cluster is not available in this build: pass --dry-run")
	}
	if opts.OutputDir != "" {
		if err := writeManifests(opts.OutputDir, p); err != nil {
			return err
		}
	}
	if opts.Output == "json" {
		return p.WriteJSON(opts.IO.Out)
	}
	return p.WriteText(opts.IO.Out)
}

// buildPlan loads the stack and its config and builds the plan, reporting
// load and render problems all together.
func buildPlan(ctx context.Context, opts *ReconcileOptions) (*plan.Plan, error) {
	s, errs := loadStack(opts.ConfigPath)
	if len(errs) > 0 {
		return nil, reportDiagnostics(opts.IO, errs)
	}
	values, _, err := config.Load(s, opts.LookupEnv)
	if err != nil {
		errs.Append(err)
		return nil, reportDiagnostics(opts.IO, errs)
	}
	p, err := plan.Build(ctx, s, plan.Options{Env: opts.Env, Slot: opts.Slot, Config: values.NonSecret()})
	if err != nil {
		if isPlanUsage(err) {
			return nil, AsUsage(err)
		}
		errs.Append(err)
		return nil, reportDiagnostics(opts.IO, errs)
	}
	return p, nil
}

// writeManifests writes each step's rendered manifests under dir, one folder
// per step prefixed with its apply position. Files are written to a staging
// folder first and moved into place, so a failure leaves no partial output.
func writeManifests(dir string, p *plan.Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write manifests: %w", err)
	}
	staging, err := os.MkdirTemp(dir, ".render-")
	if err != nil {
		return fmt.Errorf("write manifests: %w", err)
	}
	defer os.RemoveAll(staging)
	var moves [][2]string
	for i, st := range p.Steps {
		sub := fmt.Sprintf("%02d-%s", i+1, st.Name)
		if err := os.MkdirAll(filepath.Join(staging, sub), 0o755); err != nil {
			return fmt.Errorf("write manifests: %w", err)
		}
		used := map[string]bool{}
		for j, m := range st.Manifests {
			name := strings.TrimSuffix(filepath.Base(m.Path), ".tpl")
			if used[name] {
				// Two templates of one step share a file name (different folders).
				name = fmt.Sprintf("%02d-%s", j+1, name)
			}
			used[name] = true
			if err := os.WriteFile(filepath.Join(staging, sub, name), m.Data, 0o644); err != nil {
				return fmt.Errorf("write manifests: %w", err)
			}
		}
		moves = append(moves, [2]string{filepath.Join(staging, sub), filepath.Join(dir, sub)})
	}
	for _, mv := range moves {
		if err := os.RemoveAll(mv[1]); err != nil {
			return fmt.Errorf("write manifests: %w", err)
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return fmt.Errorf("write manifests: %w", err)
		}
	}
	return nil
}
