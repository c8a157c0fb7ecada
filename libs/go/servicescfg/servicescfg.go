// Package servicescfg is the front door of the engine: Open a services.yaml,
// then Validate it or Plan one environment of it. The CLI, apply.Deploy and
// a platform worker all go through it, so a stack is loaded, its config
// resolved and checked, and its plan built in one way only.
//
// The packages below it do one thing each: stack (the model, loading and
// validation), config (operator-supplied values), render (templates), plan
// (the DAG of nodes for one environment), bootstrap (the steps of a clean
// server) and apply (server-side apply and waits). servicescfg never imports
// apply: apply builds on it. Like the rest of the library it never prints,
// prompts or exits; every problem comes back as an error, a diag.List when
// it has positions.
package servicescfg

import (
	"context"
	"sync"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// Options tune how a project is opened.
type Options struct {
	// LookupEnv reads process environment variables for the stack's
	// bootstrap variables (os.LookupEnv in a CLI or a service); nil reads
	// only the config file.
	LookupEnv func(string) (string, bool)
}

// Target names one environment and, for slot environments, a slot.
type Target struct {
	Env  string
	Slot string
}

// Project is an opened services.yaml. It keeps what the loader found wrong,
// so that Validate can report it with the template problems, and Plan
// refuses with it. A Project is safe for concurrent use.
type Project struct {
	stack    *stack.Stack
	problems diag.List // the loader's, in its order
	lookup   config.LookupFunc

	engineOnce sync.Once
	engine     *render.Engine
	engineErr  error

	configOnce sync.Once
	config     *config.Values
	configErr  error
}

// Open loads the stack at path (a services.yaml, or a folder holding one).
// The error is non-nil only when the file cannot be read or is not YAML;
// every other problem of the stack is reported by Validate and Plan.
func Open(path string, opts Options) (*Project, error) {
	return OpenContext(context.Background(), path, opts)
}

// OpenContext is Open, stopped when ctx is done (an error wrapping
// ctx.Err()): resolving the paths and globs of a large stack takes time.
func OpenContext(ctx context.Context, path string, opts Options) (*Project, error) {
	s, err := stack.LoadContext(ctx, path)
	if s == nil {
		return nil, err
	}
	p := &Project{stack: s, lookup: opts.LookupEnv}
	p.problems.Append(err)
	return p, nil
}

// Stack returns the loaded stack. Read it, never change it.
func (p *Project) Stack() *stack.Stack { return p.stack }

// Problems returns what the loader found wrong with the stack, nil when
// nothing.
func (p *Project) Problems() error { return p.problems.Err() }

// Config reads the stack's config file overlaid by the process environment,
// once, and checks the values against their patterns. It holds secret
// values: hand it to apply, never to output.
func (p *Project) Config() (*config.Values, error) {
	p.configOnce.Do(func() {
		values, _, err := config.Load(p.stack, p.lookup)
		if err == nil {
			err = values.Check()
		}
		if err != nil {
			p.configErr = err
			return
		}
		p.config = values
	})
	return p.config, p.configErr
}

// PlanOption tunes one Plan call.
type PlanOption func(*plan.Options)

// IdentityOnly builds a plan that names its objects without keeping them:
// enough to print or write the plan, not to apply it (see
// plan.Options.IdentityOnly).
func IdentityOnly() PlanOption { return func(o *plan.Options) { o.IdentityOnly = true } }

// Plan builds the plan of one target. Problems of the stack, its config and
// its templates come back together as a diag.List; a target that names no
// valid environment or slot comes back as a *plan.TargetError.
func (p *Project) Plan(ctx context.Context, t Target, opts ...PlanOption) (*plan.Plan, error) {
	if err := p.Problems(); err != nil {
		return nil, err
	}
	values, err := p.Config()
	if err != nil {
		return nil, err
	}
	engine, err := p.templates()
	if err != nil {
		return nil, err
	}
	o := plan.Options{Env: t.Env, Slot: t.Slot, Config: values.NonSecret(), Engine: engine}
	for _, opt := range opts {
		opt(&o)
	}
	return plan.Build(ctx, p.stack, o)
}

// BootstrapScripts renders the stack's bootstrap steps with the template
// context of pl (a plan of this project), through the same engine and
// under one render budget.
func (p *Project) BootstrapScripts(ctx context.Context, pl *plan.Plan) ([]bootstrap.Script, error) {
	engine, err := p.templates()
	if err != nil {
		return nil, err
	}
	return bootstrap.Render(render.WithRun(ctx), p.stack, engine, pl.Context)
}

// templates returns the stack's template engine, its partials parsed once
// for every plan of the project.
func (p *Project) templates() (*render.Engine, error) {
	p.engineOnce.Do(func() { p.engine, p.engineErr = plan.EngineFor(p.stack) })
	return p.engine, p.engineErr
}
