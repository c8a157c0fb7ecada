package apply

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
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

// Deploy opens a target's stack through servicescfg.Open and reconciles the
// target's plan: what a platform worker calls to bring up an ai-slot
// namespace. opts.Values defaults to the target's resolved config. Stack and
// template problems come back as one error listing them all (a diag.List).
func Deploy(ctx context.Context, cfg *rest.Config, t Target, opts Options) (*Result, error) {
	fail := func(err error) error { return fmt.Errorf("deploy %s (%s): %w", t.Path, t.Env, err) }
	prj, err := servicescfg.OpenContext(ctx, t.Path, servicescfg.Options{LookupEnv: t.LookupEnv})
	if err != nil {
		return nil, fail(err)
	}
	p, err := prj.Plan(ctx, servicescfg.Target{Env: t.Env, Slot: t.Slot})
	if err != nil {
		return nil, fail(err)
	}
	if opts.Values == nil {
		values, err := prj.Config()
		if err != nil {
			return nil, fail(err)
		}
		opts.Values = values
	}
	return Reconcile(ctx, cfg, p, opts)
}

// Undeploy opens a target's stack and deletes the target's slot namespace
// with DeleteSlot: what a platform worker calls when a task ends. The
// target must name a slot of a slot environment.
func Undeploy(ctx context.Context, cfg *rest.Config, t Target, opts SlotOptions) (*SlotResult, error) {
	fail := func(err error) error { return fmt.Errorf("undeploy %s (%s, slot %s): %w", t.Path, t.Env, t.Slot, err) }
	prj, err := servicescfg.OpenContext(ctx, t.Path, servicescfg.Options{LookupEnv: t.LookupEnv})
	if err != nil {
		return nil, fail(err)
	}
	p, err := prj.Plan(ctx, servicescfg.Target{Env: t.Env, Slot: t.Slot}, servicescfg.IdentityOnly())
	if err != nil {
		return nil, fail(err)
	}
	res, err := DeleteSlot(ctx, cfg, p, opts)
	if err != nil {
		return nil, fail(err)
	}
	return res, nil
}
