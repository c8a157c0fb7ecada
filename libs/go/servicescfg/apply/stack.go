package apply

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// Target names what to deploy: a stack file, an environment and, for slot
// environments, a slot.
type Target struct {
	// Path is the services.yaml to load.
	Path string
	Env  string
	Slot string
	// LookupEnv reads process environment variables for the stack's
	// bootstrap variables (os.LookupEnv in a service; nil reads only the
	// config file).
	LookupEnv func(string) (string, bool)
}

// Load loads a target's stack and config and builds its plan. Stack and
// template problems come back as one error listing them all (a diag.List).
func Load(ctx context.Context, t Target) (*plan.Plan, *stack.Stack, *config.Values, error) {
	s, err := stack.Load(t.Path)
	if err != nil {
		return nil, s, nil, err
	}
	values, _, err := config.Load(s, t.LookupEnv)
	if err == nil {
		err = values.Check()
	}
	if err != nil {
		return nil, s, nil, err
	}
	p, err := plan.Build(ctx, s, plan.Options{Env: t.Env, Slot: t.Slot, Config: values.NonSecret()})
	if err != nil {
		return nil, s, values, err
	}
	return p, s, values, nil
}

// Deploy loads a target and reconciles it: what a platform worker calls to
// bring up an ai-slot namespace. The stack's spec.deploy.timeout is the
// node timeout unless opts sets one; opts.Values defaults to the target's
// resolved config.
func Deploy(ctx context.Context, cfg *rest.Config, t Target, opts Options) (*Result, error) {
	p, s, values, err := Load(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("deploy %s (%s): %w", t.Path, t.Env, err)
	}
	if opts.Timeout == 0 {
		opts.Timeout = s.Spec.Deploy.Timeout.Duration
	}
	if opts.Values == nil {
		opts.Values = values
	}
	return Reconcile(ctx, cfg, p, opts)
}
