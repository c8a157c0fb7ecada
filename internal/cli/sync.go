package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
)

// SyncOptions are the inputs of `sync`.
type SyncOptions struct {
	IO         IOStreams
	LookupEnv  func(string) (string, bool)
	Factory    *Factory
	ConfigPath string
	Env        string
	Slot       string
	Dir        string
	Watch      bool
	// HelperImage runs the workspace helper (a shell, tar and xargs).
	HelperImage string
	Kubeconfig  string
	Context     string
	// RESTConfig replaces kubeconfig loading in tests.
	RESTConfig func() (*rest.Config, error)
}

const syncLong = `Sync copies a local source tree (DIR, default the current folder) into the
workspace of an environment, where its hot-reloading services run from.

It goes through the Kubernetes API only: a helper pod of the engine
(workspace-helper, on the node of the workspace claim, running as the
workspace's uid and gid) receives tar streams over exec, as kubectl cp does.
Only what changed since the last sync is sent, deletions included. Files that
.gitignore (at any level) or the root's .dockerignore exclude are not sent,
nor .git. A symbolic link that leads out of DIR is refused.

With --watch, sync keeps running and sends each change as it is saved, until
interrupted.

A sync interrupted midway is completed by the next one. Production
environments have no workspace and are refused, as are slots that were never
reconciled.

Exit codes: 0 success, 1 failed, 2 usage error, 130 interrupted.`

// NewCmdSync builds `sync`. runF replaces the run function in tests.
func NewCmdSync(f *Factory, configPath func() string, runF func(context.Context, *SyncOptions) error) *cobra.Command {
	opts := &SyncOptions{}
	cmd := &cobra.Command{
		Use:   "sync --env NAME [--slot N] [--watch] [DIR]",
		Short: "Copy a local source tree into an environment's workspace, once or on every change",
		Long:  syncLong,
		Example: `  # the sources of the current folder into task slot 3, then every change
  codex-bootstrap sync --env ai-slot --slot 3 --watch

  # one folder into dev, once
  codex-bootstrap sync --env dev ./src`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return UsageErrorf("sync takes at most one folder, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.LookupEnv = f.LookupEnv
			opts.Factory = f
			opts.ConfigPath = configPath()
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if opts.Env == "" {
				return UsageErrorf("--env is required")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSync(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Env, "env", "", "environment whose workspace receives the tree (required)")
	fl.StringVar(&opts.Slot, "slot", "", "slot of a slot environment")
	fl.BoolVarP(&opts.Watch, "watch", "w", false, "keep running and send every change as it happens")
	fl.StringVar(&opts.HelperImage, "helper-image", workspace.DefaultHelperImage, "image of the workspace helper pod (needs sh, tar, xargs, rm, rmdir, mv)")
	fl.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fl.StringVar(&opts.Context, "context", "", "kubeconfig context (default: the current context)")
	return cmd
}

func runSync(ctx context.Context, opts *SyncOptions) error {
	tree, err := workspace.NewTree(opts.Dir)
	if err != nil {
		return AsUsage(err)
	}
	// A tree that cannot be sent is refused before the cluster is asked
	// for anything (the scan's hashes are kept for the sync).
	if _, err := tree.Scan(); err != nil {
		return err
	}
	_, p, err := openPlan(ctx, opts.IO, opts.ConfigPath, opts.LookupEnv, servicescfg.Target{Env: opts.Env, Slot: opts.Slot}, servicescfg.IdentityOnly())
	if err != nil {
		return err
	}
	spec, err := workspace.FromPlan(p)
	if err != nil {
		return fmt.Errorf("sync refused: %w", err)
	}
	logger := opts.Factory.Logger()
	cfg, err := clusterConfig(clusterAccess{opts.Kubeconfig, opts.Context, opts.LookupEnv, opts.RESTConfig}, logger)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	pod, err := workspace.EnsureHelper(ctx, client, spec, opts.HelperImage)
	if err != nil {
		if errors.Is(err, workspace.ErrSlotMissing) && p.Slot != "" {
			return fmt.Errorf("slot %s of environment %s does not exist (%w): run reconcile --env %s --slot %s first", p.Slot, p.Environment, err, p.Environment, p.Slot)
		}
		return err
	}
	s := &workspace.Syncer{Tree: tree, Spec: spec, Pod: pod.Name, Exec: workspace.KubeExecutor{Config: cfg, Client: client}}
	where := fmt.Sprintf("%s:%s", spec.Namespace, spec.MountPath)
	if !opts.Watch {
		res, err := s.Sync(ctx)
		if err != nil {
			return err
		}
		reportSync(opts, where, res)
		return nil
	}
	fmt.Fprintf(opts.IO.ErrOut, "watching %s; changes go to %s (Ctrl-C to stop)\n", tree.Root, where)
	err = s.Watch(ctx, workspace.WatchOptions{}, func(res workspace.Result, err error) {
		if err != nil {
			logger.Error("sync failed; the next change tries again", slog.Any("error", err))
			fmt.Fprintf(opts.IO.ErrOut, "sync failed: %v\n", err)
			return
		}
		if !res.Changes.Empty() {
			reportSync(opts, where, res)
		}
	})
	if errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	return err
}

func reportSync(opts *SyncOptions, where string, res workspace.Result) {
	c := res.Changes
	if c.Empty() {
		fmt.Fprintf(opts.IO.Out, "%s is up to date\n", where)
		return
	}
	fmt.Fprintf(opts.IO.Out, "synced %d changed and %d deleted files into %s (%d bytes, %s)\n",
		len(c.Put), len(c.Delete), where, res.Bytes, (res.Scan + res.Send).Round(time.Millisecond))
}
