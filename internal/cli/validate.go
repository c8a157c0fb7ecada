package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// SampleSlot is the slot used to check slot environments when none is given.
const SampleSlot = "1"

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
	s, errs := loadStack(opts.ConfigPath)
	if s == nil {
		return reportDiagnostics(opts.IO, errs)
	}
	loaded := len(errs) // the loader's own diagnostics come first
	envs := s.EnvironmentNames()
	if opts.Env != "" {
		if _, ok := s.Spec.Environments[opts.Env]; !ok {
			return UsageErrorf("unknown environment %q (declared: %s)", opts.Env, strings.Join(envs, ", "))
		}
		envs = []string{opts.Env}
	}
	values, _, err := config.Load(s, opts.LookupEnv)
	if err != nil {
		errs.Append(err)
		values = config.Resolve(s, nil, opts.LookupEnv)
	}
	errs.Append(values.Check())
	engine, err := plan.NewEngine(s)
	if err != nil {
		errs.Append(err)
		return reportDiagnostics(opts.IO, errs)
	}
	var summary []string
	nodes := map[string]bool{}
	rendered := map[string]bool{} // manifests some environment rendered
	for _, env := range envs {
		slot := ""
		if renv, err := s.ResolveEnvironment(env); err == nil && renv.Slots {
			slot = SampleSlot
			if opts.Slot != "" {
				slot = opts.Slot
			}
		} else if err != nil {
			// The loader reports broken environments at their position.
			if len(errs) == 0 {
				errs.Append(err)
			}
			continue
		} else if opts.Slot != "" {
			return UsageErrorf("environment %q has no slots: drop --slot", env)
		}
		p, err := plan.Build(ctx, s, plan.Options{Env: env, Slot: slot, Config: values.NonSecret(), Engine: engine, IdentityOnly: true})
		if err != nil {
			if isPlanUsage(err) {
				return AsUsage(err)
			}
			errs.Append(err)
			continue
		}
		if _, err := plan.RenderScripts(s, engine, p.Context); err != nil {
			errs.Append(err)
		}
		for _, st := range p.Steps {
			nodes[st.Name] = true
			for _, m := range st.Manifests {
				rendered[m.Path] = true
			}
		}
		label := env
		if slot != "" {
			label += " (slot " + slot + ")"
		}
		noun := "nodes"
		if len(p.Steps) == 1 {
			noun = "node"
		}
		summary = append(summary, fmt.Sprintf("%s: %s, %d %s", label, p.Namespace, len(p.Steps), noun))
	}
	// A manifest that no environment rendered (its node's when is false
	// everywhere, or failed) is still checked: syntax, names, functions.
	for _, f := range manifestFiles(s) {
		if !rendered[f] {
			errs.Append(engine.CheckFile(f))
		}
	}
	if len(errs) > 0 {
		return reportDiagnostics(opts.IO, onePerPosition(errs, loaded))
	}
	fmt.Fprintf(opts.IO.Out, "%s is valid\n", s.File)
	for _, line := range summary {
		fmt.Fprintf(opts.IO.Out, "  %s\n", line)
	}
	return nil
}

// onePerPosition drops the diagnostics found while rendering that sit at the
// exact position of one the loader reported (a `when` that does not parse is
// found by both): the loader's message says more.
func onePerPosition(errs diag.List, loaded int) diag.List {
	seen := map[diag.Pos]bool{}
	for _, d := range errs[:loaded] {
		if d.Pos.Line > 0 && d.Pos.Col > 0 {
			seen[d.Pos] = true
		}
	}
	out := errs[:loaded:loaded]
	for _, d := range errs[loaded:] {
		if !seen[d.Pos] {
			out = append(out, d)
		}
	}
	return out
}

// loadStack loads a stack and returns it with every problem found; the stack
// is nil only when the file could not be read or parsed at all.
func loadStack(path string) (*stack.Stack, diag.List) {
	var errs diag.List
	s, err := stack.Load(path)
	errs.Append(err)
	return s, errs
}

// reportDiagnostics prints every problem, sorted, and returns an error that
// Run does not print again.
func reportDiagnostics(io IOStreams, errs diag.List) error {
	errs.Sort()
	for _, d := range errs {
		fmt.Fprintln(io.ErrOut, d.Error())
	}
	noun := "problems"
	if len(errs) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(io.ErrOut, "%d %s found\n", len(errs), noun)
	return &silentError{err: errs}
}

func isPlanUsage(err error) bool {
	for _, target := range []error{plan.ErrUnknownEnvironment, plan.ErrSlotRequired, plan.ErrSlotNotAllowed, plan.ErrInvalidSlot} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// manifestFiles lists every manifest any node or environment overlay names,
// once each, in a stable order.
func manifestFiles(s *stack.Stack) []string {
	var patterns []string
	for _, n := range s.Nodes() {
		patterns = append(patterns, n.Manifests...)
	}
	for _, env := range s.EnvironmentNames() {
		if e := s.Spec.Environments[env]; e != nil {
			for _, name := range slices.Sorted(maps.Keys(e.Overlays)) {
				if ov := e.Overlays[name]; ov != nil {
					patterns = append(patterns, ov.Manifests...)
				}
			}
		}
	}
	seen := map[string]bool{}
	var files []string
	for _, p := range patterns {
		matched, err := s.Glob(p)
		if err != nil {
			continue // the loader reports the pattern
		}
		for _, f := range matched {
			if !seen[f] && f != filepath.Base(s.Path) {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files
}
