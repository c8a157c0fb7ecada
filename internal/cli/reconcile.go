package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	Output     string
	OutputDir  string

	// Cluster access and apply behaviour (without --dry-run).
	Kubeconfig     string
	Context        string
	Parallel       int
	Timeout        time.Duration
	ForceConflicts bool
	Recreate       bool
	NoPrune        bool
	EventsFile     string
	Yes            bool
	LockWait       time.Duration

	// RESTConfig replaces kubeconfig loading in tests.
	RESTConfig func() (*rest.Config, error)
}

// NewCmdReconcile builds `reconcile`. runF replaces the run function in tests.
func NewCmdReconcile(f *Factory, configPath func() string, runF func(context.Context, *ReconcileOptions) error) *cobra.Command {
	opts := &ReconcileOptions{}
	cmd := &cobra.Command{
		Use:   "reconcile --env NAME [--slot N] [--kubeconfig PATH] [--context NAME] [--dry-run [-o text|json] [--output-dir DIR]]",
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
per step in apply order. The folder must be new, empty or one an earlier
--output-dir wrote; the next render replaces what the earlier one wrote and
refuses to run while the folder holds any other file. Secret values never
appear in a plan.

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

An environment with the prod runtime asks for confirmation on a terminal and
needs --yes otherwise.

A slot environment (one namespace per task) needs --slot; other environments
refuse it.

Exit codes: 0 success, 1 invalid input or failed operation, 2 usage error,
130 interrupted.`,
		Example: `  # the plan of the staging environment, as text
  codex-bootstrap reconcile --env staging --dry-run

  # a task slot, as JSON, with the rendered manifests written to a folder
  codex-bootstrap reconcile --env ai-slot --slot 3 --dry-run -o json --output-dir out/

  # deploy staging to the current kubeconfig context, recording events
  codex-bootstrap reconcile --env staging --events events.jsonl

  # deploy a task slot to another cluster, 8 nodes at a time
  codex-bootstrap reconcile --env ai-slot --slot 3 --context dev-cluster --parallel 8`,
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
			switch opts.Output {
			case "text", "json":
			default:
				return UsageErrorf("invalid --output %q: use text or json", opts.Output)
			}
			if !opts.DryRun && (cmd.Flags().Changed("output") || opts.OutputDir != "") {
				return UsageErrorf("--output and --output-dir are for --dry-run")
			}
			if opts.Parallel < 1 {
				return UsageErrorf("--parallel must be at least 1, got %d", opts.Parallel)
			}
			if opts.Timeout < 0 || opts.LockWait < 0 {
				return UsageErrorf("--timeout and --lock-wait must not be negative")
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
	fl.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; in a pod, its service account)")
	fl.StringVar(&opts.Context, "context", "", "kubeconfig context (default: the current context)")
	fl.IntVar(&opts.Parallel, "parallel", apply.DefaultParallel, "nodes applied and waited for at the same time")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "readiness timeout of a node without its own (default: spec.deploy.timeout, else "+apply.DefaultTimeout.String()+")")
	fl.BoolVar(&opts.ForceConflicts, "force-conflicts", false, "take over fields that another field manager owns")
	fl.BoolVar(&opts.Recreate, "recreate", false, "delete and re-create objects whose immutable fields changed")
	fl.BoolVar(&opts.NoPrune, "no-prune", false, "keep objects that left services.yaml")
	fl.StringVar(&opts.EventsFile, "events", "", "write progress events to this file as JSON lines")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required for prod without a terminal)")
	fl.DurationVar(&opts.LockWait, "lock-wait", 0, "wait this long for another reconcile of the namespace to finish (default: fail at once)")
	return cmd
}

func runReconcile(ctx context.Context, opts *ReconcileOptions) error {
	prj, err := servicescfg.Open(opts.ConfigPath, servicescfg.Options{LookupEnv: opts.LookupEnv})
	if err != nil {
		return reportDiagnostics(opts.IO, err)
	}
	var planOpts []servicescfg.PlanOption
	if opts.DryRun {
		// A dry run prints the plan and writes the rendered text: it needs
		// the objects' names, not their content.
		planOpts = append(planOpts, servicescfg.IdentityOnly())
	}
	p, err := prj.Plan(ctx, servicescfg.Target{Env: opts.Env, Slot: opts.Slot}, planOpts...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if uerr := targetUsage(err); uerr != nil {
			return uerr
		}
		return reportDiagnostics(opts.IO, err)
	}
	if !opts.DryRun {
		values, err := prj.Config()
		if err != nil {
			return reportDiagnostics(opts.IO, err)
		}
		return runApply(ctx, opts, p, values)
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

// manifestsMarker marks a folder written by --output-dir and lists every
// file in it that the render wrote: those are replaced by the next render,
// and anything else in the folder makes it refuse.
const manifestsMarker = ".codex-bootstrap-manifests"

const markerHeader = "# written by codex-bootstrap reconcile --dry-run --output-dir: the files below\n# are replaced by the next render; a folder holding other files is refused\n"

// writeManifests writes each step's rendered manifests under dir, one folder
// per step prefixed with its apply position. Files are written to a staging
// folder first and moved into place, so a failure leaves no partial output.
// Files of an earlier render that this plan does not have are removed, so
// that `kubectl apply -R` of the folder applies this plan only. A file the
// earlier render did not write, or a folder it never wrote to, is refused
// rather than overwritten or mixed with.
func writeManifests(dir string, p *plan.Plan) error {
	fail := func(err error) error { return fmt.Errorf("write manifests: %w", err) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	owned, marked, err := readMarker(dir)
	if err != nil {
		return fail(err)
	}
	if len(entries) > 0 && !marked {
		return fmt.Errorf("write manifests: %s is not empty and was not written by --output-dir: choose a new or empty folder", dir)
	}
	if foreign, err := foreignFiles(dir, owned); err != nil {
		return fail(err)
	} else if len(foreign) > 0 {
		more := ""
		if len(foreign) > 5 {
			more = fmt.Sprintf(" and %d more", len(foreign)-5)
			foreign = foreign[:5]
		}
		return fmt.Errorf("write manifests: %s holds files an earlier render did not write (%s%s): move them out, or choose another folder", dir, strings.Join(foreign, ", "), more)
	}

	staging, err := os.MkdirTemp(dir, ".render-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(staging)
	var moves [][2]string
	written := map[string]bool{}
	for i, st := range p.Steps {
		sub := fmt.Sprintf("%02d-%s", i+1, st.Name)
		if err := os.MkdirAll(filepath.Join(staging, sub), 0o755); err != nil {
			return fail(err)
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
				return fail(err)
			}
			written[sub+"/"+name] = true
		}
		moves = append(moves, [2]string{filepath.Join(staging, sub), filepath.Join(dir, sub)})
	}
	// While files move, the marker lists both renders: whatever happens,
	// every file in the folder stays listed.
	if err := writeMarker(dir, union(owned, written)); err != nil {
		return fail(err)
	}
	keep := map[string]bool{manifestsMarker: true, filepath.Base(staging): true}
	for _, mv := range moves {
		keep[filepath.Base(mv[1])] = true
		if err := os.RemoveAll(mv[1]); err != nil {
			return fail(err)
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return fail(err)
		}
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fail(err)
			}
		}
	}
	if err := writeMarker(dir, written); err != nil {
		return fail(err)
	}
	return nil
}

// readMarker returns the files an earlier render listed, and whether the
// folder has a marker at all. A marker without a list (written before lists
// were kept) owns the files inside step folders ("NN-name/").
func readMarker(dir string) (owned map[string]bool, marked bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestsMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	owned = map[string]bool{}
	listed := false
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "written by ") {
			continue
		}
		// Each path is written quoted: file names may hold spaces or
		// line breaks.
		path, err := strconv.Unquote(line)
		if err != nil {
			return nil, true, fmt.Errorf("%s: unreadable line %q: delete the folder or choose another", filepath.Join(dir, manifestsMarker), line)
		}
		owned[path], listed = true, true
	}
	if !listed {
		owned = nil // the old marker: step folders are owned, see foreignFiles
	}
	return owned, true, nil
}

var (
	stepFolder = regexp.MustCompile(`^[0-9]{2,}-[^/]+/[^/]+$`)
	// stagingFolder is what os.MkdirTemp(dir, ".render-") makes.
	stagingFolder = regexp.MustCompile(`^\.render-[0-9]+$`)
)

// foreignFiles lists the files under dir, slash-separated, that neither
// the marker nor an interrupted render's staging folder accounts for.
func foreignFiles(dir string, owned map[string]bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && stagingFolder.MatchString(rel):
			return filepath.SkipDir // staging of a render that was interrupted
		case d.IsDir(), rel == manifestsMarker:
			return nil
		case owned != nil && owned[rel], owned == nil && stepFolder.MatchString(rel):
			return nil
		}
		out = append(out, rel)
		return nil
	})
	return out, err
}

func writeMarker(dir string, files map[string]bool) error {
	var b strings.Builder
	b.WriteString(markerHeader)
	for _, f := range slices.Sorted(maps.Keys(files)) {
		b.WriteString(strconv.Quote(f) + "\n")
	}
	return os.WriteFile(filepath.Join(dir, manifestsMarker), []byte(b.String()), 0o644)
}

func union(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
