package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// InventoryName is the ConfigMap, in the environment's namespace, that
// lists every object the engine applied, per node in plan order. Prune
// deletes only objects listed there.
const InventoryName = "codex-bootstrap-inventory"

const inventoryKey = "inventory.json"

// inventory lists applied objects per node, in plan order.
type inventory struct {
	Nodes []inventoryNode `json:"nodes"`
}

type inventoryNode struct {
	Name string `json:"name"`
	// Group is the node's deploy group when it was applied, so that a node
	// pruned after leaving the stack is still reported with its group.
	Group   string      `json:"group,omitempty"`
	Objects []ObjectRef `json:"objects"`
}

func (inv inventory) keys() map[string]bool {
	out := map[string]bool{}
	for _, n := range inv.Nodes {
		for _, o := range n.Objects {
			out[o.key()] = true
		}
	}
	return out
}

// union is the planned inventory plus whatever the previous one listed that
// the plan drops, so that an interrupted run loses track of nothing.
func (inv inventory) union(planned inventory) inventory {
	out := inventory{}
	have := planned.keys()
	prev := map[string]inventoryNode{}
	for _, n := range inv.Nodes {
		prev[n.Name] = n
	}
	for _, n := range planned.Nodes {
		m := inventoryNode{Name: n.Name, Group: n.Group, Objects: slices.Clone(n.Objects)}
		for _, o := range prev[n.Name].Objects {
			if !have[o.key()] {
				m.Objects = append(m.Objects, o)
				have[o.key()] = true
			}
		}
		out.Nodes = append(out.Nodes, m)
	}
	for _, n := range inv.Nodes {
		if slices.ContainsFunc(planned.Nodes, func(p inventoryNode) bool { return p.Name == n.Name }) {
			continue
		}
		m := inventoryNode{Name: n.Name, Group: n.Group}
		for _, o := range n.Objects {
			if !have[o.key()] {
				m.Objects = append(m.Objects, o)
				have[o.key()] = true
			}
		}
		if len(m.Objects) > 0 {
			out.Nodes = append(out.Nodes, m)
		}
	}
	return out
}

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// plannedInventory lists what this plan applies.
func (e *reconcileRun) plannedInventory() inventory {
	inv := inventory{}
	if len(e.p.Secrets) > 0 {
		n := inventoryNode{Name: secretsNode}
		for _, s := range e.p.Secrets {
			n.Objects = append(n.Objects, ObjectRef{Version: "v1", Kind: "Secret", Namespace: e.p.Namespace, Name: s.Name})
		}
		inv.Nodes = append(inv.Nodes, n)
	}
	for _, s := range e.p.Nodes {
		n := inventoryNode{Name: s.Name, Group: s.Group, Objects: []ObjectRef{}}
		for _, o := range s.Objects {
			ref := refOf(o.Object)
			// The planner defaults a namespace onto kinds it does not know;
			// the cluster knows which are cluster-scoped.
			if m, err := e.c.Mapper.RESTMapping(ref.gvk().GroupKind(), ref.Version); err == nil && m.Scope.Name() == meta.RESTScopeNameRoot {
				ref.Namespace = ""
			}
			n.Objects = append(n.Objects, ref)
		}
		inv.Nodes = append(inv.Nodes, n)
	}
	return inv
}

func (e *reconcileRun) readInventory(ctx context.Context) (inventory, error) {
	var inv inventory
	cm, err := e.c.Dynamic.Resource(configMapsGVR).Namespace(e.p.Namespace).Get(ctx, InventoryName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// A reconcile writes its inventory before anything else: in a
		// namespace this run created, none means no other reconcile
		// (one that took the lease first) has written anything there.
		e.newNamespace = e.createdNamespace
		return inv, nil
	}
	if err != nil {
		return inv, fmt.Errorf("read inventory %s/%s: %w", e.p.Namespace, InventoryName, err)
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", inventoryKey)
	if data == "" {
		return inv, nil
	}
	if cm.GetLabels()[LabelManagedBy] == ManagedBy {
		e.invData = data
	}
	if err := json.Unmarshal([]byte(data), &inv); err != nil {
		return inv, fmt.Errorf("read inventory %s/%s: %w", e.p.Namespace, InventoryName, err)
	}
	return inv, nil
}

func (e *reconcileRun) writeInventory(ctx context.Context, inv inventory) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	if string(data) == e.invData {
		return nil // the ConfigMap holds it already
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name":      InventoryName,
			"namespace": e.p.Namespace,
			"labels":    map[string]any{LabelManagedBy: ManagedBy},
		},
		"data": map[string]any{inventoryKey: string(data)},
	}}
	ri := e.c.Dynamic.Resource(configMapsGVR).Namespace(e.p.Namespace)
	if _, err := ri.Apply(ctx, InventoryName, cm, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", e.p.Namespace, InventoryName, err)
	}
	e.invData = string(data)
	return nil
}

// neverPruned are kinds whose loss loses data or other tenants' objects;
// they go only when annotated codex-k8s.dev/prune: allow.
var neverPruned = map[schema.GroupKind]bool{
	{Kind: "Namespace"}:             true,
	{Kind: "PersistentVolumeClaim"}: true,
	crdGK:                           true,
}

// prune deletes objects of the previous inventory that the plan no longer
// has, in reverse plan order, each waited for until gone. It touches only
// objects labelled as managed by the engine.
//
// It returns the inventory to record: the planned objects plus those it
// kept (protected kinds not yet allowed), so that allowing them later lets
// the next run prune them.
func (e *reconcileRun) prune(ctx context.Context, prev, planned inventory) (inventory, error) {
	keep := planned.keys()
	next := inventory{Nodes: slices.Clone(planned.Nodes)}
	kept := map[string][]ObjectRef{}
	for i := len(prev.Nodes) - 1; i >= 0; i-- {
		n := prev.Nodes[i]
		start := e.now()
		var pruned []string
		for j := len(n.Objects) - 1; j >= 0; j-- {
			ref := n.Objects[j]
			if keep[ref.key()] {
				continue
			}
			done, protected, err := e.pruneObject(ctx, n.Name, ref)
			if err != nil {
				e.emit(Event{Node: n.Name, Group: n.Group, Phase: PhasePrune, Status: StatusFailed, Objects: []string{ref.String()}, Duration: e.now().Sub(start), Message: err.Error()})
				return next.union(prev), err
			}
			if done {
				pruned = append(pruned, ref.String())
			}
			if protected {
				kept[n.Name] = append(kept[n.Name], ref)
			}
		}
		if len(pruned) > 0 {
			e.emit(Event{Node: n.Name, Group: n.Group, Phase: PhasePrune, Status: StatusPruned, Objects: pruned, Duration: e.now().Sub(start)})
		}
	}
	if len(kept) > 0 {
		var extra inventory
		for _, n := range prev.Nodes {
			if refs := kept[n.Name]; len(refs) > 0 {
				extra.Nodes = append(extra.Nodes, inventoryNode{Name: n.Name, Group: n.Group, Objects: refs})
			}
		}
		next = next.union(extra)
	}
	return next, nil
}

// pruneHold is why prune keeps an object that left the stack.
type pruneHold int

const (
	holdNone    pruneHold = iota // prune deletes it
	holdNotOurs                  // not managed by the engine
	holdKind                     // a kind never pruned, not annotated prune: allow
	holdAdopted                  // taken over, not created, and not annotated prune: allow
)

// pruneHoldOf says whether and why prune keeps live, the object ref.
func pruneHoldOf(live *unstructured.Unstructured, ref ObjectRef) pruneHold {
	allowed := live.GetAnnotations()[AnnotationPrune] == PruneAllow
	switch {
	case live.GetLabels()[LabelManagedBy] != ManagedBy:
		return holdNotOurs
	case neverPruned[ref.gvk().GroupKind()] && !allowed:
		return holdKind
	case live.GetAnnotations()[AnnotationAdopted] == "true" && !allowed:
		return holdAdopted
	}
	return holdNone
}

// pruneObject deletes one object if the engine manages it; protected says
// it was kept only for being a never-pruned kind.
func (e *reconcileRun) pruneObject(ctx context.Context, node string, ref ObjectRef) (done, protected bool, err error) {
	m, err := e.c.Mapper.RESTMapping(schema.GroupKind{Group: ref.Group, Kind: ref.Kind}, ref.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return false, false, nil // its CRD is gone, and so is the object
		}
		return false, false, fmt.Errorf("prune %s: %w", ref, err)
	}
	ri := e.c.Dynamic.Resource(m.Resource).Namespace(ref.Namespace)
	live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("prune %s: %w", ref, err)
	}
	switch pruneHoldOf(live, ref) {
	case holdNotOurs:
		e.log.Warn("not pruning an object the engine does not manage", "node", node, "object", ref.String())
		return false, false, nil
	case holdKind:
		e.log.Warn("kept an object that left the stack: annotate it "+AnnotationPrune+"="+PruneAllow+" to let prune delete it", "node", node, "object", ref.String())
		return false, true, nil
	case holdAdopted:
		e.log.Warn("kept an object that left the stack: the engine took it over but did not create it; delete it by hand, or annotate it "+AnnotationPrune+"="+PruneAllow+" to let prune delete it", "node", node, "object", ref.String())
		return false, true, nil
	}
	e.log.Info("pruning", "node", node, "object", ref.String())
	prop := metav1.DeletePropagationBackground
	// Deletion waits for finalizers, which may never finish: bounded by the
	// node timeout, and a timeout names them.
	timeout := e.opts.Timeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := e.deleteAndWait(dctx, ri, ref, prop); err != nil {
		if ctx.Err() != nil || dctx.Err() == nil {
			return false, false, fmt.Errorf("prune: %w", err)
		}
		if err := e.pruneTimeout(ri, ref, timeout); err != nil {
			return false, false, err
		} // else it went just as the wait ended: pruned
	}
	e.record(node, ref, ActionPruned)
	return true, false, nil
}

// pruneTimeout explains a deletion that did not finish in time: what still
// holds the object. It returns nil when the object went after all.
func (e *reconcileRun) pruneTimeout(ri dynamic.ResourceInterface, ref ObjectRef, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	var why string
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		why = "and reading it again failed: " + err.Error()
	case len(live.GetFinalizers()) > 0:
		why = "its finalizers " + strings.Join(live.GetFinalizers(), ", ") + " have not finished; whoever set them must, or remove them"
	default:
		why = "it is still there"
	}
	return fmt.Errorf("prune %s: not deleted within %v: %s", ref, timeout, why)
}
