package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// SampleSlot is the slot used to check slot environments when none is given.
const SampleSlot = servicescfg.SampleSlot

// ValidateOptions are the inputs of `validate`.
type ValidateOptions struct {
	IO         IOStreams
	LookupEnv  func(string) (string, bool)
	ConfigPath string
	Env        string
	Slot       string
}

// NewCmdValidate builds `validate`. runF replaces the run function in tests.
func NewCmdValidate(f *Factory, configPath func() string, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [--config services.yaml] [--env NAME [--slot N]]",
		Short: "Check services.yaml and render every environment, contacting nothing",
		Long: `Validate loads services.yaml, checks every rule of the ServiceStack schema
(unknown fields, required fields, duplicate names, dependencies that name
nothing, dependency cycles, dependencies on later groups, environment
inheritance, paths and globs that leave the stack root or match nothing),
then renders every manifest and every bootstrap step script of every
environment with the partials of templates.partials and builds each
environment's plan.

Slot environments are rendered with a sample slot (` + SampleSlot + `) unless --slot is given.
Values for .Config come from the stack's bootstrap config file overlaid by the
process environment, where variable NAME is read from CODEX_VAR_NAME only;
missing values are not an error here.

Every problem is listed on stderr as FILE:LINE:COL: message, sorted, all in
one run. Nothing is contacted and nothing is written.

Exit codes: 0 valid, 1 problems found, 2 usage error.`,
		Example: `  codex-bootstrap validate
  codex-bootstrap validate --config examples/new-project/services.yaml
  codex-bootstrap validate --env ai-slot --slot 7`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.LookupEnv = f.LookupEnv
			opts.ConfigPath = configPath()
			if opts.Slot != "" && opts.Env == "" {
				return UsageErrorf("--slot needs --env")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runValidate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Env, "env", "", "validate only this environment (default: all)")
	cmd.Flags().StringVar(&opts.Slot, "slot", "", "slot to render a slot environment with (default "+SampleSlot+")")
	return cmd
}

func runValidate(ctx context.Context, opts *ValidateOptions) error {
	prj, err := servicescfg.OpenContext(ctx, opts.ConfigPath, servicescfg.Options{LookupEnv: opts.LookupEnv})
	if err != nil {
		return reportDiagnostics(opts.IO, err)
	}
	var targets []servicescfg.Target
	if opts.Env != "" {
		targets = append(targets, servicescfg.Target{Env: opts.Env, Slot: opts.Slot})
	}
	report, err := prj.Validate(ctx, targets...)
	if err != nil {
		if uerr := targetUsage(err); uerr != nil {
			return uerr
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		return reportDiagnostics(opts.IO, err)
	}
	fmt.Fprintf(opts.IO.Out, "%s is valid\n", report.File)
	for _, env := range report.Environments {
		label := env.Env
		if env.Slot != "" {
			label += " (slot " + env.Slot + ")"
		}
		noun := "nodes"
		if env.Nodes == 1 {
			noun = "node"
		}
		fmt.Fprintf(opts.IO.Out, "  %s: %s, %d %s\n", label, env.Namespace, env.Nodes, noun)
	}
	noteMissing(opts.IO, prj)
	return nil
}

// noteMissing tells on stderr which required variables have no value yet:
// install asks for them, so validate only notes them (names and
// descriptions, never a value).
func noteMissing(io IOStreams, prj *servicescfg.Project) {
	values, err := prj.Config()
	if err != nil {
		return
	}
	missing := values.Missing()
	if len(missing) == 0 {
		return
	}
	file := "the config file"
	if b := prj.Stack().Spec.Bootstrap; b != nil && b.ConfigFile != "" {
		file = b.ConfigFile
	}
	fmt.Fprintf(io.ErrOut, "note: %d required variable(s) have no value yet; install asks for them (or set them in %s or as %sNAME):\n",
		len(missing), diag.Escape(file), config.EnvPrefix)
	for _, v := range missing {
		line := "  " + v.Name
		if v.Description != "" {
			line += ": " + v.Description
		}
		fmt.Fprintln(io.ErrOut, diag.Escape(line))
	}
}

// reportDiagnostics prints every problem in err, sorted, and returns an
// error that Run does not print again; an interruption is returned as it
// is.
func reportDiagnostics(io IOStreams, err error) error {
	if errors.Is(err, context.Canceled) {
		return err // interrupted, not a problem of the stack: Main says so (130)
	}
	var errs diag.List
	errs.Append(err)
	errs.Sort()
	lines := make([]string, len(errs))
	for i, d := range errs {
		lines[i] = d.Error()
	}
	writeProblems(io.ErrOut, lines)
	noun := "problems"
	if len(errs) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(io.ErrOut, "%d %s found\n", len(errs), noun)
	return &silentError{err: errs}
}
