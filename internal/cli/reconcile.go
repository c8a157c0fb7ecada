package cli

import (
	"context"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// ReconcileOptions are the inputs of `reconcile`.
type ReconcileOptions struct {
	IO         IOStreams
	Prompter   Prompter
	LookupEnv  func(string) (string, bool)
	Factory    *Factory
	ConfigPath string
	Env        string
	Slot       string
	DryRun     bool
	// Diff compares the plan with the cluster instead of applying it;
	// ExitCode makes a difference exit with ExitChanges.
	Diff      bool
	ExitCode  bool
	Output    string
	OutputDir string

	// Cluster access and apply behaviour (without --dry-run).
	Kubeconfig string
	Context    string
	Parallel   int
	// DiffParallel bounds the objects --diff compares at once: --parallel
	// when given, else 0 (the library's default).
	DiffParallel   int
	Timeout        time.Duration
	ForceConflicts bool
	Recreate       bool
	NoPrune        bool
	EventsFile     string
	// Events receives the progress events too (install's, whose file
	// already holds the bootstrap steps).
	Events   apply.Observer
	Yes      bool
	LockWait time.Duration

	// Slot lifecycle: TTL overrides environments.<name>.ttl; Delete removes
	// the slot's namespace; PruneExpired removes every expired slot.
	TTL          time.Duration
	Delete       bool
	PruneExpired bool

	// SSH reaches the cluster of a server install prepared through SSH
	// (--ssh HOST): the kubeconfig is read there and the API dialled from
	// the server's side.
	SSH sshFlags
	// RESTConfig replaces kubeconfig loading in tests.
	RESTConfig func() (*rest.Config, error)
}

// reconcileLong is the help text of reconcile.
const reconcileLong = `Reconcile renders the stack for one environment and brings the cluster to it.

The plan is a graph: a node starts when its dependencies are ready and every
node of the groups before it is ready (default group order: stateful ->
migrations -> internal -> edge -> frontend). Nodes of one level may run at the
same time.

With --dry-run nothing is contacted: the plan is printed (namespace, groups in
order, nodes with their dependencies and the objects each applies), as text
or, with -o json, as exactly one JSON document on stdout (logs go to stderr).
With --output-dir the rendered manifests are also written there, one folder
per node in apply order. The folder must be new, empty or one an earlier
--output-dir wrote; the next render replaces what the earlier one wrote and
refuses to run while the folder holds any other file. Secret values never
appear in a plan.

-o dot and -o mermaid draw the plan instead (with --dry-run): one box per
deploy group in order, an arrow from each dependency to its dependent, a
thick arrow for each group barrier; pipe dot to Graphviz, paste mermaid into
a Markdown file.

With --diff nothing is applied and nothing written (no namespace, no lease):
every object is applied with the server's dry run under the field manager
codex-bootstrap and compared with the live object. Per node it prints what
would be created, changed (a unified diff of the fields that change, without
managedFields, resourceVersion, generation, status and other fields the
server owns) or left as is, then what prune would delete. Secret values are
masked: the keys that change are named. Fields of another manager, immutable
fields and Jobs that would be re-run are flagged as a real apply would meet
them (with --force-conflicts and --recreate: "would take over", "would
recreate"). -o json prints the same as one document; --exit-code exits 3 when
an apply would change something.

Without --dry-run the plan is applied to the cluster of the current
kubeconfig context (KUBECONFIG, --kubeconfig, --context; in a pod, the pod's
service account): the namespace first, labelled with stack, environment and
slot, then the Secrets of spec.secrets, then every node with server-side apply
(field manager codex-bootstrap), each waited for until ready: workloads rolled
out, Jobs complete, claims bound, declared conditions met. A node whose
dependencies failed is skipped; independent nodes go on. Objects that left
services.yaml are deleted afterwards (never namespaces, claims or CRDs unless
annotated codex-k8s.dev/prune=allow). One reconcile runs per namespace at a
time (a Lease). A second run with no changes modifies nothing.

Fields owned by another manager are a conflict, reported with the fields and
their manager; --force-conflicts takes them over. A change to an immutable
field is refused unless --recreate (delete, wait, create again).

A production environment (named prod, on the prod runtime or marked
production: true) asks for confirmation on a terminal and needs --yes
otherwise.

A slot environment (one namespace per task) needs --slot; other environments
refuse it. A slot's namespace is labelled with the stack, the environment and
the slot. With environments.<name>.ttl (or --ttl) each reconcile of a slot sets
its annotation codex-k8s.dev/expires-at to now + ttl. --delete removes the
slot's namespace and everything in it, after checking from those labels that
it is that slot of this stack (any other namespace is refused); --prune-expired
removes every slot of the environment whose expires-at has passed. Neither
goes with --dry-run, which contacts nothing: list the slots with kubectl.

Exit codes: 0 success, 1 invalid input or failed operation, 2 usage error,
3 changes found (--diff --exit-code), 130 interrupted.`

// NewCmdReconcile builds `reconcile`. runF replaces the run function in tests.
func NewCmdReconcile(f *Factory, configPath func() string, runF func(context.Context, *ReconcileOptions) error) *cobra.Command {
	opts := &ReconcileOptions{}
	cmd := &cobra.Command{
		Use:   "reconcile --env NAME [--slot N] [--kubeconfig PATH] [--context NAME] [--ttl D | --delete | --prune-expired] [--dry-run [-o text|json|dot|mermaid] [--output-dir DIR] | --diff [-o text|json] [--exit-code]]",
		Short: "Deploy an environment from services.yaml, in order, waiting for readiness",
		Long:  reconcileLong,
		Example: `  # the plan of the staging environment, as text
  codex-bootstrap reconcile --env staging --dry-run

  # a task slot, as JSON, with the rendered manifests written to a folder
  codex-bootstrap reconcile --env ai-slot --slot 3 --dry-run -o json --output-dir out/

  # what would a deploy of staging change? exit 3 if anything
  codex-bootstrap reconcile --env staging --diff --exit-code

  # the plan of staging as a Mermaid flowchart
  codex-bootstrap reconcile --env staging --dry-run -o mermaid

  # deploy staging to the current kubeconfig context, recording events
  codex-bootstrap reconcile --env staging --events events.jsonl

  # deploy a task slot to another cluster, 8 nodes at a time
  codex-bootstrap reconcile --env ai-slot --slot 3 --context dev-cluster --parallel 8

  # a task slot that expires 24 hours after its last reconcile
  codex-bootstrap reconcile --env ai-slot --slot 3 --ttl 24h

  # delete a task slot, then every slot whose ttl ran out
  codex-bootstrap reconcile --env ai-slot --slot 3 --delete
  codex-bootstrap reconcile --env ai-slot --prune-expired`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO = f.IO
			opts.Prompter = f.prompter()
			opts.LookupEnv = f.LookupEnv
			opts.Factory = f
			opts.ConfigPath = configPath()
			if opts.Env == "" {
				return UsageErrorf("--env is required")
			}
			if err := checkOutputFlags(cmd, opts); err != nil {
				return err
			}
			if opts.Parallel < 1 {
				return UsageErrorf("--parallel must be at least 1, got %d", opts.Parallel)
			}
			if opts.Diff && cmd.Flags().Changed("parallel") {
				opts.DiffParallel = opts.Parallel
			}
			if opts.Timeout < 0 || opts.LockWait < 0 {
				return UsageErrorf("--timeout and --lock-wait must not be negative")
			}
			if err := checkSlotFlags(cmd, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runReconcile(cmd.Context(), opts)
		},
	}
	addReconcileFlags(cmd, opts)
	return cmd
}

func runReconcile(ctx context.Context, opts *ReconcileOptions) error {
	prj, err := servicescfg.OpenContext(ctx, opts.ConfigPath, servicescfg.Options{LookupEnv: opts.LookupEnv})
	if err != nil {
		return reportDiagnostics(opts.IO, err)
	}
	if opts.PruneExpired {
		return runPruneExpired(ctx, opts, prj)
	}
	var planOpts []servicescfg.PlanOption
	if opts.DryRun || opts.Delete {
		// A dry run prints the plan and writes the rendered text: it needs
		// the objects' names, not their content.
		planOpts = append(planOpts, servicescfg.IdentityOnly())
	}
	p, err := planTarget(ctx, opts.IO, prj, servicescfg.Target{Env: opts.Env, Slot: opts.Slot}, planOpts...)
	if err != nil {
		return err
	}
	if opts.Delete {
		return runDeleteSlot(ctx, opts, prj, p)
	}
	if opts.TTL > 0 {
		if p.Slot == "" {
			return UsageErrorf("--ttl is for slot environments: environment %s is not one", p.Environment)
		}
		p.TTL = opts.TTL
	}
	if !opts.DryRun {
		values, err := prj.Config()
		if err != nil {
			return reportDiagnostics(opts.IO, err)
		}
		if opts.SSH.Host != "" {
			closeSSH, err := reconcileOverSSH(ctx, opts, prj.Stack(), values)
			if err != nil {
				return err
			}
			defer closeSSH()
		}
		if opts.Diff {
			return runDiff(ctx, opts, p, values)
		}
		return runApply(ctx, opts, p, values)
	}
	if opts.OutputDir != "" {
		if err := writeManifests(opts.OutputDir, p); err != nil {
			return err
		}
	}
	return writePlan(opts.IO.Out, p, opts.Output)
}

// addReconcileFlags declares reconcile's flags into opts.
func addReconcileFlags(cmd *cobra.Command, opts *ReconcileOptions) {
	fl := cmd.Flags()
	fl.StringVar(&opts.Env, "env", "", "environment to reconcile (required)")
	fl.StringVar(&opts.Slot, "slot", "", "slot of a slot environment, e.g. a task number")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan instead of applying it; contacts nothing")
	fl.StringVarP(&opts.Output, "output", "o", "text", "format of --dry-run (text, json, dot or mermaid) and --diff (text or json)")
	fl.BoolVar(&opts.Diff, "diff", false, "show what an apply would change (server-side dry run against the cluster); writes nothing")
	fl.BoolVar(&opts.ExitCode, "exit-code", false, "with --diff, exit 3 when an apply would change something, 0 when not")
	fl.StringVar(&opts.OutputDir, "output-dir", "", "with --dry-run, also write the rendered manifests to this folder")
	fl.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod, its service account)")
	fl.StringVar(&opts.Context, "context", "", "kubeconfig context (default: the current context)")
	fl.IntVar(&opts.Parallel, "parallel", apply.DefaultParallel, "nodes applied and waited for at the same time (with --diff: objects compared at once, default "+strconv.Itoa(apply.DefaultDiffParallel)+")")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "readiness timeout of a node without its own (default: spec.deploy.timeout, else "+apply.DefaultTimeout.String()+")")
	fl.BoolVar(&opts.ForceConflicts, "force-conflicts", false, "take over fields that another field manager owns")
	fl.BoolVar(&opts.Recreate, "recreate", false, "delete and re-create objects whose immutable fields changed")
	fl.BoolVar(&opts.NoPrune, "no-prune", false, "keep objects that left services.yaml")
	fl.StringVar(&opts.EventsFile, "events", "", "write progress events to this file as JSON lines")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required for prod without a terminal)")
	fl.StringVar(&opts.SSH.Host, "ssh", "", "deploy to the cluster of a server prepared by install, through SSH to this host (port, user and key as for install)")
	fl.StringVar(&opts.SSH.HostKey, "host-key", "", "with --ssh, accept the server's host key only if its fingerprint is this SHA256:...")
	fl.DurationVar(&opts.TTL, "ttl", 0, "a slot expires this long after its last reconcile (overrides environments.<name>.ttl)")
	fl.BoolVar(&opts.Delete, "delete", false, "delete the slot's namespace (--slot) instead of reconciling it")
	fl.BoolVar(&opts.PruneExpired, "prune-expired", false, "delete every slot of the environment whose ttl ran out")
	fl.DurationVar(&opts.LockWait, "lock-wait", 0, "wait this long for another reconcile of the namespace to finish (default: fail at once)")
}

// openPlan opens the stack and plans one target (see planTarget).
func openPlan(ctx context.Context, io IOStreams, path string, lookup func(string) (string, bool), t servicescfg.Target, opts ...servicescfg.PlanOption) (*servicescfg.Project, *plan.Plan, error) {
	prj, err := servicescfg.OpenContext(ctx, path, servicescfg.Options{LookupEnv: lookup})
	if err != nil {
		return nil, nil, reportDiagnostics(io, err)
	}
	p, err := planTarget(ctx, io, prj, t, opts...)
	return prj, p, err
}

// planTarget plans one target of an opened stack: the stack's problems
// reported with their positions, a target it does not have as a usage
// error.
func planTarget(ctx context.Context, io IOStreams, prj *servicescfg.Project, t servicescfg.Target, opts ...servicescfg.PlanOption) (*plan.Plan, error) {
	p, err := prj.Plan(ctx, t, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if uerr := targetUsage(err); uerr != nil {
			return nil, uerr
		}
		return nil, reportDiagnostics(io, err)
	}
	return p, nil
}
