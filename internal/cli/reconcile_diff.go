package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// ErrChanges is the outcome of `reconcile --diff --exit-code` when an
// apply would change something: not a failure, exit code ExitChanges.
var ErrChanges = errors.New("the cluster differs from the plan")

// maxDiffLines bounds the diff printed for one object in text; -o json
// holds it whole.
const maxDiffLines = 400

// checkOutputFlags checks --output, --output-dir, --diff and --exit-code
// together.
func checkOutputFlags(cmd *cobra.Command, opts *ReconcileOptions) error {
	outputSet := cmd.Flags().Changed("output")
	switch {
	case opts.Diff && opts.DryRun:
		return UsageErrorf("--diff and --dry-run exclude each other: --diff asks the cluster what an apply would change, --dry-run prints the plan without contacting it")
	case opts.ExitCode && !opts.Diff:
		return UsageErrorf("--exit-code is for --diff")
	case opts.Diff && opts.OutputDir != "":
		return UsageErrorf("--output-dir is for --dry-run")
	case opts.Diff && opts.EventsFile != "":
		return UsageErrorf("--events records an apply: --diff applies nothing")
	case !opts.DryRun && !opts.Diff && (outputSet || opts.OutputDir != ""):
		return UsageErrorf("--output and --output-dir are for --dry-run and --diff")
	}
	switch opts.Output {
	case "text", "json":
	case "dot", "mermaid":
		if !opts.DryRun {
			return UsageErrorf("--output %s draws the plan: it is for --dry-run", opts.Output)
		}
	default:
		return UsageErrorf("invalid --output %q: use text or json (with --dry-run also dot or mermaid)", opts.Output)
	}
	return nil
}

// writePlan prints a dry run's plan in the format --output names.
func writePlan(w io.Writer, p *plan.Plan, format string) error {
	switch format {
	case "json":
		return p.WriteJSON(w)
	case "dot":
		return p.WriteDOT(w)
	case "mermaid":
		return p.WriteMermaid(w)
	}
	return p.WriteText(w)
}

// runDiff compares the plan with the cluster and prints what an apply
// would change. It writes nothing to the cluster.
func runDiff(ctx context.Context, opts *ReconcileOptions, p *plan.Plan, values *config.Values) error {
	logger := opts.Factory.Logger()
	cfg, err := clusterConfig(opts.cluster(), logger)
	if err != nil {
		return err
	}
	res, err := apply.Diff(ctx, cfg, p, apply.DiffOptions{
		ForceConflicts: opts.ForceConflicts,
		Recreate:       opts.Recreate,
		NoPrune:        opts.NoPrune,
		Parallel:       opts.DiffParallel,
		Values:         values,
		Logger:         logger,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return wordFlags(err)
	}
	if opts.Output == "json" {
		err = writeDiffJSON(opts.IO.Out, p, cfg.Host, res)
	} else {
		err = writeDiffText(opts.IO.Out, p, cfg.Host, res, diffFlags{force: opts.ForceConflicts, recreate: opts.Recreate})
	}
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("the API server refuses %d object(s) of the plan: see %q above", res.Failed, apply.ChangeFail)
	}
	if opts.ExitCode && res.HasChanges() {
		return &silentError{err: ErrChanges}
	}
	return nil
}

// diffDocument is `reconcile --diff -o json`: one document.
type diffDocument struct {
	Stack       string `json:"stack"`
	Environment string `json:"environment"`
	Slot        string `json:"slot,omitempty"`
	Server      string `json:"server"`
	Changes     bool   `json:"changes"`
	*apply.DiffResult
}

func writeDiffJSON(w io.Writer, p *plan.Plan, server string, res *apply.DiffResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(diffDocument{Stack: p.Stack, Environment: p.Environment, Slot: p.Slot, Server: server, Changes: res.HasChanges(), DiffResult: res})
}

// writeDiffText prints the diff per node in plan order: a node whose
// objects are all unchanged on one line, the others object by object with
// the diff of each change; then the prune list and a summary.
func writeDiffText(w io.Writer, p *plan.Plan, server string, res *apply.DiffResult, f diffFlags) error {
	var b strings.Builder
	fmt.Fprintf(&b, "diff of %s (environment %s) against namespace %s on %s\n", p.Stack, envLabel(p), p.Namespace, server)
	group, node := "\x00", "\x00"
	objs := res.Objects
	for i := 0; i < len(objs); i++ {
		o := objs[i]
		if o.Node == "" {
			writeNamespaceLine(&b, res, o, f)
			continue
		}
		if o.Group != group {
			group = o.Group
			if group == "" {
				b.WriteString("secrets\n")
			} else {
				fmt.Fprintf(&b, "group %s\n", group)
			}
		}
		if o.Node != node {
			node = o.Node
			n := 0
			for n < len(objs)-i && objs[i+n].Node == node {
				n++
			}
			if allUnchanged(objs[i : i+n]) {
				fmt.Fprintf(&b, "  %s: unchanged (%s)\n", node, plural(n, "object"))
				i += n - 1
				continue
			}
			if o.Node != apply.SecretsNode {
				fmt.Fprintf(&b, "  %s\n", node)
			}
		}
		indent := "    "
		if o.Node == apply.SecretsNode {
			indent = "  "
		}
		writeObject(&b, indent, o, f)
	}
	if len(res.Prune) > 0 {
		b.WriteString("prune\n")
		for _, o := range res.Prune {
			writeObject(&b, "  ", o, f)
		}
	}
	fmt.Fprintf(&b, "summary: %d to create, %d to change, %d unchanged, %d to prune", res.Created, res.Changed, res.Unchanged, res.Pruned)
	if res.Failed > 0 {
		fmt.Fprintf(&b, ", %d refused by the API server", res.Failed)
	}
	if !res.HasChanges() {
		b.WriteString(" (no changes)")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeNamespaceLine(b *strings.Builder, res *apply.DiffResult, o apply.ObjectDiff, f diffFlags) {
	switch {
	case res.NamespaceNew && o.Reason != "":
		fmt.Fprintf(b, "namespace %s: %s; everything in it would be created\n", res.Namespace, o.Reason)
	case res.NamespaceNew:
		fmt.Fprintf(b, "namespace %s: new; everything in it would be created\n", res.Namespace)
	case o.Change == apply.ChangeNone:
		fmt.Fprintf(b, "namespace %s: unchanged\n", res.Namespace)
	default:
		writeObject(b, "", o, f)
	}
}

func allUnchanged(objs []apply.ObjectDiff) bool {
	for _, o := range objs {
		if o.Change != apply.ChangeNone {
			return false
		}
	}
	return true
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// changeMarks are the line marks of each change.
var changeMarks = map[apply.Change]string{
	apply.ChangeCreate: "+", apply.ChangeUpdate: "~", apply.ChangeRecreate: "!", apply.ChangeNone: "=",
	apply.ChangePrune: "-", apply.ChangeKeep: "=", apply.ChangeFail: "x",
}

// writeObject prints one object's line, what a real apply would hit, and
// its diff indented under it.
func writeObject(b *strings.Builder, indent string, o apply.ObjectDiff, f diffFlags) {
	line := fmt.Sprintf("%s%s %s %s", indent, changeMarks[o.Change], o.Change, o.Object)
	if len(o.SecretKeys) > 0 {
		line += " (keys " + strings.Join(o.SecretKeys, ", ") + "; values not shown)"
	}
	if o.Reason != "" {
		line += ": " + o.Reason
	}
	b.WriteString(diag.Escape(line) + "\n")
	for _, note := range diffNotes(o, f) {
		b.WriteString(diag.Escape(indent+"    "+note) + "\n")
	}
	if o.Diff == "" {
		return
	}
	lines := strings.Split(strings.TrimSuffix(o.Diff, "\n"), "\n")
	for i, l := range lines {
		if i == maxDiffLines {
			fmt.Fprintf(b, "%s    ... %d more lines (-o json holds the whole diff)\n", indent, len(lines)-i)
			break
		}
		b.WriteString(diag.Escape(indent+"    "+l) + "\n")
	}
}

// diffFlags are the apply flags a diff is worded for.
type diffFlags struct{ force, recreate bool }

// diffNotes words what a real apply would hit, in terms of reconcile's
// flags.
func diffNotes(o apply.ObjectDiff, f diffFlags) []string {
	var out []string
	if len(o.Conflicts) > 0 {
		var fields []string
		for _, c := range o.Conflicts {
			fields = append(fields, fmt.Sprintf("%s (owned by %q)", c.Field, c.Manager))
		}
		if f.force {
			out = append(out, "would take over fields of another manager: "+strings.Join(fields, ", "))
		} else {
			out = append(out, "conflict: a real apply would stop here: fields of another manager: "+strings.Join(fields, ", ")+"; --force-conflicts would take them over")
		}
	}
	if o.Change == apply.ChangeRecreate && o.Reason == "" {
		fields := "an immutable field"
		if len(o.Immutable) > 0 {
			fields = strings.Join(o.Immutable, ", ")
		}
		if f.recreate {
			out = append(out, "would recreate: "+fields+" cannot change in place; deleted and created again (its data and pods go with it)")
		} else {
			out = append(out, "immutable: a real apply would stop here: cannot change "+fields+" of an existing object; --recreate would delete and re-create it (its data and pods go with it)")
		}
	}
	if o.ClientSideApply {
		out = append(out, "fields written by client-side kubectl apply move to codex-bootstrap first: fields the manifest dropped are removed then too, which this diff does not show")
	}
	if o.Err != "" {
		out = append(out, "refused: "+o.Err)
	}
	return out
}
