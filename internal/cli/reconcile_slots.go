package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// checkSlotFlags refuses the slot lifecycle flags in combinations that
// mean nothing.
func checkSlotFlags(cmd *cobra.Command, opts *ReconcileOptions) error {
	switch {
	case opts.TTL < 0:
		return UsageErrorf("--ttl must not be negative")
	case opts.Delete && opts.PruneExpired:
		return UsageErrorf("--delete and --prune-expired do not go together: --delete removes one slot (--slot), --prune-expired the expired ones")
	case opts.PruneExpired && opts.Slot != "":
		return UsageErrorf("--prune-expired looks at every slot of the environment: drop --slot")
	case (opts.Delete || opts.PruneExpired) && opts.DryRun:
		return UsageErrorf("--dry-run contacts nothing, and what --delete and --prune-expired would delete is known only to the cluster: "+
			"list the slots with kubectl get namespaces -l codex-k8s.dev/env=%s,codex-k8s.dev/slot "+
			"-o custom-columns=NAME:.metadata.name,SLOT:.metadata.labels.codex-k8s\\.dev/slot,EXPIRES:.metadata.annotations.codex-k8s\\.dev/expires-at", opts.Env)
	case (opts.Delete || opts.PruneExpired) && opts.Diff:
		return UsageErrorf("--diff compares a plan with the cluster: not with --delete or --prune-expired")
	case (opts.Delete || opts.PruneExpired) && cmd.Flags().Changed("ttl"):
		return UsageErrorf("--ttl is for a reconcile, not with --delete or --prune-expired")
	}
	return nil
}

// slotOptions are the library options of --delete and --prune-expired.
func slotOptions(opts *ReconcileOptions) apply.SlotOptions {
	return apply.SlotOptions{Wait: true, Timeout: opts.Timeout}
}

// slotClients prepares cluster access for --delete and --prune-expired.
func slotClients(ctx context.Context, opts *ReconcileOptions, prj *servicescfg.Project) (*apply.Clients, func(), error) {
	closeSSH := func() {}
	if opts.SSH.Host != "" {
		values, err := prj.Config()
		if err != nil {
			return nil, nil, reportDiagnostics(opts.IO, err)
		}
		if closeSSH, err = reconcileOverSSH(ctx, opts, prj.Stack(), values); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := clusterConfig(opts.cluster(), opts.Factory.Logger())
	if err != nil {
		closeSSH()
		return nil, nil, err
	}
	c, err := apply.NewClients(cfg)
	if err != nil {
		closeSSH()
		return nil, nil, err
	}
	return c, closeSSH, nil
}

// runDeleteSlot deletes the namespace of the slot p plans.
func runDeleteSlot(ctx context.Context, opts *ReconcileOptions, prj *servicescfg.Project, p *plan.Plan) error {
	c, closeSSH, err := slotClients(ctx, opts, prj)
	if err != nil {
		return err
	}
	defer closeSSH()
	res, err := apply.DeleteSlotWith(ctx, c, p, slotOptions(opts))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var notOwned *apply.NotOwnedError
		if errors.As(err, &notOwned) {
			return err
		}
		return fmt.Errorf("delete slot %s of %s: %w", p.Slot, p.Environment, err)
	}
	switch {
	case res.Absent:
		fmt.Fprintf(opts.IO.Out, "namespace %s (slot %s) does not exist: nothing to delete\n", p.Namespace, p.Slot)
	default:
		fmt.Fprintf(opts.IO.Out, "deleted namespace %s (slot %s of %s)\n", p.Namespace, p.Slot, p.Environment)
	}
	return nil
}

// runPruneExpired deletes the expired slots of the environment.
func runPruneExpired(ctx context.Context, opts *ReconcileOptions, prj *servicescfg.Project) error {
	if err := prj.Problems(); err != nil {
		return reportDiagnostics(opts.IO, err)
	}
	renv, err := prj.Stack().ResolveEnvironment(opts.Env)
	if err != nil {
		return AsUsage(err)
	}
	if !renv.Slots {
		return UsageErrorf("--prune-expired is for slot environments: environment %s is not one", opts.Env)
	}
	c, closeSSH, err := slotClients(ctx, opts, prj)
	if err != nil {
		return err
	}
	defer closeSSH()
	res, err := apply.PruneExpiredWith(ctx, c, prj.Stack(), opts.Env, slotOptions(opts))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if res != nil {
		for _, d := range res.Deleted {
			fmt.Fprintf(opts.IO.Out, "deleted namespace %s (slot %s, expired at %s)\n", d.Namespace, d.Slot, d.ExpiresAt.Format(time.RFC3339))
		}
		for _, k := range res.Kept {
			if k.Problem != "" {
				fmt.Fprintf(opts.IO.ErrOut, "warning: kept namespace %s (slot %s): %s\n", k.Namespace, k.Slot, k.Problem)
			}
		}
		fmt.Fprintf(opts.IO.Out, "%d expired slot(s) of %s deleted, %d kept\n", len(res.Deleted), opts.Env, len(res.Kept))
	}
	return err
}
