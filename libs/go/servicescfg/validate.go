package servicescfg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/rootfs"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// SampleSlot is the slot a slot environment is checked with when the target
// names none.
const SampleSlot = "1"

// Report is what Validate checked.
type Report struct {
	// File is the stack file as named in messages.
	File string
	// Environments are the environments planned, in name order.
	Environments []EnvironmentReport
}

// EnvironmentReport is one environment's plan, summed up.
type EnvironmentReport struct {
	Env       string
	Slot      string // the slot it was rendered with; "" outside slot environments
	Namespace string
	Nodes     int
}

// Validate checks the whole stack without contacting anything: the loader's
// rules, the config values, and, for each target (every environment when
// none is given), the plan with every manifest and every bootstrap step
// rendered. A slot environment without a slot is rendered with SampleSlot.
// A manifest that no environment renders is still checked on its own.
//
// Every problem comes back in one diag.List. A target that names no valid
// environment or slot comes back alone, as a *plan.TargetError, before
// anything is rendered.
func (p *Project) Validate(ctx context.Context, targets ...Target) (*Report, error) {
	targets, err := p.validationTargets(targets)
	if err != nil {
		return nil, err
	}
	errs := slices.Clone(p.problems)
	loaded := len(errs) // the loader's own diagnostics come first
	values, _, err := config.Load(p.stack, p.lookup)
	if err != nil {
		// A config file that leads out of the root or is not a regular
		// file: the loader has said so already, at configFile.
		var nr *rootfs.NotRegularError
		if !errors.Is(err, rootfs.ErrOutsideRoot) && !errors.As(err, &nr) {
			errs.Append(err)
		}
		values = config.Resolve(p.stack, nil, p.lookup)
	}
	errs.Append(values.Check())
	engine, err := p.templates()
	if err != nil {
		errs.Append(err)
		return nil, errs.Err()
	}
	report := &Report{File: p.stack.File}
	rendered := map[string]bool{} // manifests some environment rendered
	for _, t := range targets {
		env, ok, err := p.validateTarget(ctx, engine, t, values, rendered)
		if ctx.Err() != nil {
			// Interrupted: what was found so far is not the report.
			return nil, fmt.Errorf("validate %s: %w", p.stack.File, ctx.Err())
		}
		var te *plan.TargetError
		if errors.As(err, &te) {
			return nil, err
		}
		errs.Append(err)
		if ok {
			report.Environments = append(report.Environments, env)
		}
	}
	// A manifest that no environment rendered (its node's when is false
	// everywhere, or failed) is still checked: syntax, names, functions.
	for _, f := range manifestFiles(p.stack) {
		if !rendered[f] {
			errs.Append(engine.CheckFile(f))
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("validate %s: %w", p.stack.File, ctx.Err())
	}
	if len(errs) > 0 {
		return report, onePerPosition(errs, loaded).Err()
	}
	return report, nil
}

// validationTargets checks the targets' environments and gives each slot
// environment its slot: the given targets, or every environment.
func (p *Project) validationTargets(given []Target) ([]Target, error) {
	s := p.stack
	if len(given) == 0 {
		for _, env := range s.EnvironmentNames() {
			given = append(given, Target{Env: env})
		}
	}
	var out []Target
	for _, t := range given {
		if _, ok := s.Spec.Environments[t.Env]; !ok {
			return nil, &plan.TargetError{Err: plan.ErrUnknownEnvironment, Env: t.Env, Declared: s.EnvironmentNames()}
		}
		renv, err := s.ResolveEnvironment(t.Env)
		switch {
		case err != nil:
			// The loader reports broken environments at their position;
			// the target is planned and fails there.
		case renv.Slots && t.Slot == "":
			t.Slot = SampleSlot
		case !renv.Slots && t.Slot != "":
			return nil, &plan.TargetError{Err: plan.ErrSlotNotAllowed, Env: t.Env, Slot: t.Slot}
		}
		out = append(out, t)
	}
	return out, nil
}

// validateTarget plans one target and renders the bootstrap steps with its
// context, noting the manifests it rendered. ok is false when it could not
// be planned.
func (p *Project) validateTarget(ctx context.Context, engine *render.Engine, t Target, values *config.Values, rendered map[string]bool) (EnvironmentReport, bool, error) {
	s := p.stack
	if _, err := s.ResolveEnvironment(t.Env); err != nil {
		// The loader reports broken environments at their position; only
		// when it found nothing is the resolver's word needed.
		if len(p.problems) == 0 {
			return EnvironmentReport{}, false, err
		}
		return EnvironmentReport{}, false, nil
	}
	pl, err := plan.Build(ctx, s, plan.Options{Env: t.Env, Slot: t.Slot, Config: values.NonSecret(), Engine: engine, IdentityOnly: true})
	if err != nil {
		return EnvironmentReport{}, false, err
	}
	var errs diag.List
	if _, err := p.BootstrapScripts(ctx, pl); err != nil {
		errs.Append(err)
	}
	for _, n := range pl.Nodes {
		for _, m := range n.Manifests {
			rendered[m.Path] = true
		}
	}
	return EnvironmentReport{Env: t.Env, Slot: t.Slot, Namespace: pl.Namespace, Nodes: len(pl.Nodes)}, true, errs.Err()
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
		matched, err := s.Manifests(p)
		if err != nil {
			continue // the loader reports the pattern
		}
		for _, f := range matched {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files
}
