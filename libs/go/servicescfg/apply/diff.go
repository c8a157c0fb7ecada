package apply

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// DiffOptions tune a Diff. The zero value is usable.
type DiffOptions struct {
	// Parallel bounds the objects compared at once; DefaultDiffParallel
	// when zero.
	Parallel int
	// ForceConflicts and Recreate are the apply options the diff is for:
	// with them, a conflict is a take-over and an immutable change a
	// re-creation; without them, the object is marked Refused.
	ForceConflicts bool
	Recreate       bool
	// NoPrune leaves the prune list out.
	NoPrune bool
	// Values supplies the fromConfig values of spec.secrets.
	Values ConfigValues
	// Logger receives diagnostics; discarded when nil.
	Logger *slog.Logger
}

// DefaultDiffParallel bounds the objects compared at once: a comparison
// is two short requests, so wider than a reconcile's node bound.
const DefaultDiffParallel = 16

// Change is what an apply would do to one object.
type Change string

const (
	ChangeCreate   Change = "create"
	ChangeUpdate   Change = "change"
	ChangeRecreate Change = "recreate"
	ChangeNone     Change = "unchanged"
	ChangePrune    Change = "prune"
	ChangeKeep     Change = "keep" // left the stack, kept by prune's rules
	ChangeFail     Change = "fail" // the API server refuses it
)

// SecretsNode is the Node of the Secrets of spec.secrets in a diff.
const SecretsNode = secretsNode

// ObjectDiff is what an apply would do to one object. It holds no secret
// value: a Secret's data values are masked in Diff and its keys named in
// SecretKeys.
type ObjectDiff struct {
	// Node is the plan node ("" for the namespace, SecretsNode for
	// spec.secrets); Group its deploy group.
	Node   string    `json:"node"`
	Group  string    `json:"group,omitempty"`
	Object ObjectRef `json:"object"`
	Change Change    `json:"change"`
	// Diff is a unified diff of the object as it is and as it would be,
	// without server-owned fields (managedFields, resourceVersion,
	// generation, status, ...); empty unless Change is ChangeUpdate.
	Diff string `json:"diff,omitempty"`
	// SecretKeys names the keys of a Secret whose values would be set,
	// changed or removed.
	SecretKeys []string `json:"secretKeys,omitempty"`
	// Conflicts are fields another manager owns: taken over with
	// ForceConflicts, else a real apply stops there (Refused).
	Conflicts []FieldConflict `json:"conflicts,omitempty"`
	// Immutable are fields that cannot change in place: re-created with
	// Recreate, else a real apply stops there (Refused).
	Immutable []string `json:"immutable,omitempty"`
	// Refused is set when a real apply with these options would stop at
	// this object (a conflict or an immutable field).
	Refused bool `json:"refused,omitempty"`
	// Reason says why, when the change alone does not: a Job run again, a
	// kind its new CRD serves, an object prune keeps.
	Reason string `json:"reason,omitempty"`
	// ClientSideApply is set when fields of the live object belong to
	// client-side kubectl apply: a reconcile moves them to FieldManager
	// before it applies, so fields the manifest dropped go too, which a dry
	// run of the apply alone cannot show.
	ClientSideApply bool `json:"clientSideApply,omitempty"`
	// Err is what the API server said against the object (ChangeFail).
	Err string `json:"error,omitempty"`
}

// DiffResult is what an apply of a plan would do, nothing of it done.
type DiffResult struct {
	Namespace string `json:"namespace"`
	// NamespaceNew is set when the namespace does not exist (or is being
	// deleted): everything in it would be created.
	NamespaceNew bool `json:"namespaceNew"`
	// Objects are the namespace, the Secrets of spec.secrets and every
	// node's objects, in plan order.
	Objects []ObjectDiff `json:"objects"`
	// Prune lists objects that left the stack, in the order prune visits
	// them.
	Prune []ObjectDiff `json:"prune"`
	// Counts of Objects and Prune by change; Changed includes re-created.
	Created   int `json:"created"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Pruned    int `json:"pruned"`
	Failed    int `json:"failed"`
}

// HasChanges reports whether an apply would modify anything.
func (r *DiffResult) HasChanges() bool { return r.Created+r.Changed+r.Pruned+r.Failed > 0 }

// Diff compares p with the cluster cfg points at.
func Diff(ctx context.Context, cfg *rest.Config, p *plan.Plan, opts DiffOptions) (*DiffResult, error) {
	c, err := NewClients(cfg)
	if err != nil {
		return nil, err
	}
	return DiffWith(ctx, c, p, opts)
}

// DiffWith compares p with the cluster: every object of the plan is
// applied with the server's dry run under FieldManager and compared with
// the live object. Nothing is written: no namespace, no lease, no
// inventory. Objects in a namespace that does not exist yet are new
// without asking the server; kinds served by a CustomResourceDefinition of
// the plan that the cluster lacks are new too.
//
// The error is non-nil only when the comparison could not be made (the
// cluster unreachable, a fromConfig value missing); what the server refuses
// for one object is that object's ChangeFail.
func DiffWith(ctx context.Context, c *Clients, p *plan.Plan, opts DiffOptions) (*DiffResult, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultDiffParallel
	}
	e := newReconcileRun(c, p, Options{ForceConflicts: opts.ForceConflicts, Recreate: opts.Recreate, Values: opts.Values, Logger: opts.Logger})
	if err := e.checkPlan(); err != nil {
		return nil, err
	}
	if err := e.checkSecretValues(); err != nil {
		return nil, err
	}
	d := &differ{run: e, opts: opts, res: &DiffResult{Namespace: p.Namespace, Objects: []ObjectDiff{}, Prune: []ObjectDiff{}}, cache: newLiveCache(c.Dynamic)}
	if err := d.namespace(ctx); err != nil {
		return nil, err
	}
	if err := d.objects(ctx); err != nil {
		return nil, err
	}
	if !opts.NoPrune && !d.res.NamespaceNew {
		if err := d.prune(ctx); err != nil {
			return nil, err
		}
	}
	d.count()
	return d.res, nil
}

// differ compares one plan with the cluster.
type differ struct {
	run   *reconcileRun
	opts  DiffOptions
	res   *DiffResult
	cache *liveCache
	// missing are the namespaces, the environment's and those the plan
	// creates, that do not exist yet.
	missing map[string]bool
}

func (d *differ) count() {
	for _, o := range slices.Concat(d.res.Objects, d.res.Prune) {
		switch o.Change {
		case ChangeCreate:
			d.res.Created++
		case ChangeUpdate, ChangeRecreate:
			d.res.Changed++
		case ChangeNone:
			d.res.Unchanged++
		case ChangePrune:
			d.res.Pruned++
		case ChangeFail:
			d.res.Failed++
		}
	}
}

// namespace compares the environment's namespace; a missing or
// terminating one makes everything in it new.
func (d *differ) namespace(ctx context.Context) error {
	ri := d.run.c.Dynamic.Resource(namespacesGVR)
	live, err := ri.Get(ctx, d.run.p.Namespace, metav1.GetOptions{})
	var current *unstructured.Unstructured
	if err == nil {
		current = live
	}
	ns := d.run.namespaceObject(current)
	od := ObjectDiff{Object: refOf(ns)}
	switch {
	case apierrors.IsNotFound(err):
		d.res.NamespaceNew = true
		od.Change = ChangeCreate
	case err != nil:
		return fmt.Errorf("namespace %s: read: %w", ns.GetName(), err)
	case live.GetDeletionTimestamp() != nil:
		d.res.NamespaceNew = true
		od.Change = ChangeRecreate
		od.Reason = "the namespace is being deleted: a reconcile waits until it is gone, then creates it"
	default:
		od = d.compare(ctx, ri, live, ns, od)
	}
	d.res.Objects = append(d.res.Objects, od)
	return nil
}

// item is one object of the plan to compare, its place in the result
// fixed before the comparisons run in parallel.
type item struct {
	node  *plan.Node // nil for spec.secrets
	obj   *unstructured.Unstructured
	ri    dynamic.ResourceInterface
	gvr   schema.GroupVersionResource
	local bool // in a namespace that does not exist yet
	out   ObjectDiff
	done  bool // decided without the server
}

// objects compares the Secrets of spec.secrets and every node's objects.
func (d *differ) objects(ctx context.Context) error {
	items, err := d.items(ctx)
	if err != nil {
		return err
	}
	for _, it := range items {
		if !it.done && !it.local {
			d.cache.want(it.gvr, it.obj.GetNamespace())
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, d.opts.Parallel)
	errs := make([]error, len(items))
	for i, it := range items {
		if it.done {
			continue
		}
		if it.local {
			it.out.Change = ChangeCreate
			it.out.SecretKeys = secretKeys(nil, it.obj)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = d.item(ctx, it)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first: an interrupt fails every object alike
		}
	}
	for _, it := range items {
		d.res.Objects = append(d.res.Objects, it.out)
	}
	return nil
}

// items resolves every object of the plan to its resource, in plan order.
func (d *differ) items(ctx context.Context) ([]*item, error) {
	newKinds := map[schema.GroupVersionKind]bool{}
	d.missing = map[string]bool{d.run.p.Namespace: d.res.NamespaceNew}
	for _, s := range d.run.p.Nodes {
		for _, o := range s.Objects {
			switch gk := o.Object.GroupVersionKind().GroupKind(); gk {
			case crdGK:
				for _, gvk := range servedKinds(o.Object) {
					newKinds[gvk] = true
				}
			case schema.GroupKind{Kind: "Namespace"}:
				// A node's namespace is applied before the node's other
				// objects: what goes into a new one is new.
				name := o.Object.GetName()
				if _, seen := d.missing[name]; !seen {
					_, err := d.run.c.Dynamic.Resource(namespacesGVR).Get(ctx, name, metav1.GetOptions{})
					if err != nil && !apierrors.IsNotFound(err) {
						return nil, fmt.Errorf("namespace %s: read: %w", name, err)
					}
					d.missing[name] = apierrors.IsNotFound(err)
				}
			}
		}
	}
	var items []*item
	for _, s := range d.run.p.Secrets {
		u, err := d.run.buildSecret(s, nil, false) // data filled in against the live Secret
		if err != nil {
			return nil, err
		}
		it := &item{obj: u, gvr: secretsGVR, ri: d.run.c.Dynamic.Resource(secretsGVR).Namespace(d.run.p.Namespace), local: d.res.NamespaceNew,
			out: ObjectDiff{Node: SecretsNode, Object: refOf(u)}}
		items = append(items, it)
	}
	// One mapping per kind: an unknown kind refreshes discovery each time.
	mappings := map[schema.GroupVersionKind]mapped{}
	for _, s := range d.run.p.Nodes {
		for _, o := range s.Objects {
			items = append(items, d.nodeItem(s, o.Object, newKinds, mappings))
		}
	}
	return items, nil
}

// mapped is a kind's REST mapping, or why there is none.
type mapped struct {
	m   *meta.RESTMapping
	err error
}

// nodeItem resolves one object of a node.
func (d *differ) nodeItem(s *plan.Node, in *unstructured.Unstructured, newKinds map[schema.GroupVersionKind]bool, mappings map[schema.GroupVersionKind]mapped) *item {
	u := labelled(s, in)
	it := &item{node: s, obj: u, out: ObjectDiff{Node: s.Name, Group: s.Group, Object: refOf(u)}}
	r, ok := mappings[u.GroupVersionKind()]
	if !ok {
		r.m, r.err = d.run.mapping(u.GroupVersionKind())
		mappings[u.GroupVersionKind()] = r
	}
	m, err := r.m, r.err
	switch {
	case err != nil && meta.IsNoMatchError(err) && newKinds[u.GroupVersionKind()]:
		it.done = true
		it.out.Change = ChangeCreate
		it.out.Reason = "its kind is served by a CustomResourceDefinition of the plan that the cluster does not serve yet"
		return it
	case err != nil:
		it.done = true
		it.out.Change = ChangeFail
		it.out.Err = err.Error()
		return it
	}
	ri, err := d.run.resourceOf(m, s.Name, s.ClusterScoped, u)
	if err != nil {
		it.done = true
		it.out.Change = ChangeFail
		it.out.Err = err.Error()
		return it
	}
	it.ri, it.gvr = ri, m.Resource
	it.out.Object = refOf(u) // the namespace the mapping fixed
	it.local = u.GetNamespace() != "" && d.missing[u.GetNamespace()]
	return it
}

// item compares one object with its live self.
func (d *differ) item(ctx context.Context, it *item) error {
	live, err := d.cache.get(ctx, it.ri, it.gvr, it.obj.GetNamespace(), it.obj.GetName())
	if err != nil {
		return fmt.Errorf("%s: read: %w", it.out.Object, err)
	}
	if it.node == nil {
		// A Secret of spec.secrets keeps its generated values.
		var existing map[string]any
		if live != nil {
			existing, _, _ = unstructured.NestedMap(live.Object, "data")
		}
		for _, s := range d.run.p.Secrets {
			if s.Name == it.obj.GetName() {
				if it.obj, err = d.run.buildSecret(s, existing, false); err != nil {
					return err
				}
			}
		}
	}
	if isJob(it.obj) {
		it.out = d.job(ctx, it, live)
		return nil
	}
	if it.node != nil {
		// A reconcile applies a node's object with its spec hash, taken
		// before the adoption mark (applyObject).
		if _, err := stampSpecHash(it.obj); err != nil {
			return fmt.Errorf("%s: %w", it.out.Object, err)
		}
	}
	if live != nil && adopted(live) {
		markTakenOver(it.obj)
	}
	it.out = d.compare(ctx, it.ri, live, it.obj, it.out)
	it.out.ClientSideApply = live != nil && clientSideApplied(live)
	return nil
}

// compare dry-runs the apply of u and compares the outcome with live (nil
// when there is none).
func (d *differ) compare(ctx context.Context, ri dynamic.ResourceInterface, live, u *unstructured.Unstructured, od ObjectDiff) ObjectDiff {
	out, err := d.dryApply(ctx, ri, u, false)
	if ce := conflictError(od.Object, err); ce != nil {
		od.Conflicts = ce.Conflicts
		od.Refused = !d.opts.ForceConflicts
		// What it would look like once taken over.
		out, err = d.dryApply(ctx, ri, u, true)
	}
	if fields, ok := immutableFields(err); ok && live != nil {
		od.Change = ChangeRecreate
		od.Immutable = fields
		od.Refused = od.Refused || !d.opts.Recreate
		od.SecretKeys = secretKeys(live, u)
		return od
	}
	if err != nil {
		od.Change = ChangeFail
		od.Err = err.Error()
		return od
	}
	if live == nil {
		od.Change = ChangeCreate
		od.SecretKeys = secretKeys(nil, out)
		return od
	}
	before, after := comparable(live), comparable(out)
	od.SecretKeys = maskSecret(before, after)
	text, err := unifiedDiff(before, after)
	if err != nil {
		od.Change = ChangeFail
		od.Err = err.Error()
		return od
	}
	od.Change = ChangeNone
	if text != "" {
		od.Change = ChangeUpdate
		od.Diff = text
	}
	return od
}

func (d *differ) dryApply(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured, force bool) (*unstructured.Unstructured, error) {
	return ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: force, DryRun: []string{metav1.DryRunAll}})
}

// job says what a reconcile would do to a Job: leave an unchanged one
// alone, and replace one that changed or failed (a Job's pod template
// cannot be updated in place).
func (d *differ) job(ctx context.Context, it *item, live *unstructured.Unstructured) ObjectDiff {
	od := it.out
	hash, err := stampSpecHash(it.obj)
	if err != nil {
		od.Change, od.Err = ChangeFail, err.Error()
		return od
	}
	switch {
	case live == nil:
		return d.compare(ctx, it.ri, nil, it.obj, od)
	case jobKept(live, hash):
		od.Change = ChangeNone
	case jobFailed(live):
		od.Change, od.Reason = ChangeRecreate, "the Job failed: a reconcile deletes it and runs it again"
	default:
		od.Change, od.Reason = ChangeRecreate, "the Job changed: a reconcile deletes it and creates it again"
	}
	return od
}

// prune lists what a reconcile would prune: objects of the inventory the
// plan no longer has.
func (d *differ) prune(ctx context.Context) error {
	inv, err := d.run.readInventory(ctx)
	if err != nil {
		return err
	}
	keep := d.run.plannedInventory().keys()
	for i := len(inv.Nodes) - 1; i >= 0; i-- {
		n := inv.Nodes[i]
		for j := len(n.Objects) - 1; j >= 0; j-- {
			ref := n.Objects[j]
			if keep[ref.key()] {
				continue
			}
			od, ok, err := d.pruneObject(ctx, n, ref)
			if err != nil {
				return err
			}
			if ok {
				d.res.Prune = append(d.res.Prune, od)
			}
		}
	}
	return nil
}

// pruneObject says what prune would do to one object; ok is false when
// there is nothing to say (it is gone already).
func (d *differ) pruneObject(ctx context.Context, n inventoryNode, ref ObjectRef) (ObjectDiff, bool, error) {
	od := ObjectDiff{Node: n.Name, Group: n.Group, Object: ref, Change: ChangePrune}
	m, err := d.run.c.Mapper.RESTMapping(schema.GroupKind{Group: ref.Group, Kind: ref.Kind}, ref.Version)
	if meta.IsNoMatchError(err) {
		return od, false, nil
	}
	if err != nil {
		return od, false, fmt.Errorf("prune %s: %w", ref, err)
	}
	live, err := d.cache.get(ctx, d.run.c.Dynamic.Resource(m.Resource).Namespace(ref.Namespace), m.Resource, ref.Namespace, ref.Name)
	if err != nil {
		return od, false, fmt.Errorf("prune %s: %w", ref, err)
	}
	if live == nil {
		return od, false, nil
	}
	switch pruneHoldOf(live, ref) {
	case holdNotOurs:
		od.Change, od.Reason = ChangeKeep, "not managed by the engine"
	case holdKind:
		od.Change, od.Reason = ChangeKeep, "kept unless annotated "+AnnotationPrune+"="+PruneAllow
	case holdAdopted:
		od.Change, od.Reason = ChangeKeep, "taken over, not created, by the engine: kept unless annotated "+AnnotationPrune+"="+PruneAllow
	}
	return od, true, nil
}

// clientSideApplied reports whether fields of live belong to client-side
// kubectl apply.
func clientSideApplied(live *unstructured.Unstructured) bool {
	for _, m := range live.GetManagedFields() {
		if csaManagers.Has(m.Manager) && m.Operation == metav1.ManagedFieldsOperationUpdate {
			return true
		}
	}
	return false
}
