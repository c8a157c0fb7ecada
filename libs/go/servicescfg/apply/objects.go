package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/csaupgrade"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// csaManagers are the field managers of client-side `kubectl apply`; their
// fields move to FieldManager on first contact so that fields dropped from
// the stack are really removed.
var csaManagers = sets.New("kubectl-client-side-apply", "kubectl")

// ConflictError is a server-side apply conflict: fields of the object are
// owned by another manager. Options.ForceConflicts takes them over; a
// caller words that in its own terms (the CLI with its flag).
type ConflictError struct {
	Object    ObjectRef
	Conflicts []FieldConflict
}

// FieldConflict is one conflicting field and its owner.
type FieldConflict struct {
	Field   string
	Manager string
}

func (e *ConflictError) Error() string {
	return e.Problem() + "; force the apply to take them over, or drop them from the manifest"
}

// Problem says what is wrong without saying what to do about it, for a
// caller that words the remedy itself.
func (e *ConflictError) Problem() string {
	var parts []string
	for _, c := range e.Conflicts {
		parts = append(parts, fmt.Sprintf("%s (owned by %q)", c.Field, c.Manager))
	}
	return fmt.Sprintf("%s: fields changed by another manager: %s", e.Object, strings.Join(parts, ", "))
}

// ImmutableError is an update refused because an immutable field changed.
// Options.Recreate deletes and re-creates the object instead; a caller
// words that in its own terms (the CLI with its flag).
type ImmutableError struct {
	Object ObjectRef
	Fields []string
	Err    error
}

func (e *ImmutableError) Error() string {
	return e.Problem() + "; it must be deleted and re-created to change it (its data and pods go with it)"
}

// Problem says what is wrong without saying what to do about it, for a
// caller that words the remedy itself.
func (e *ImmutableError) Problem() string {
	fields := "an immutable field"
	if len(e.Fields) > 0 {
		fields = strings.Join(e.Fields, ", ")
	}
	return fmt.Sprintf("%s: cannot change %s of an existing object", e.Object, fields)
}

func (e *ImmutableError) Unwrap() error { return e.Err }

// ScopeError is an object outside the environment's namespace in a slot
// environment.
type ScopeError struct {
	Node   string
	Object ObjectRef
	Reason string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("node %s: %s %s; set clusterScoped: true on the node if every slot may share it", e.Node, e.Object, e.Reason)
}

// appliedObject is an object after apply, with what it takes to watch it.
type appliedObject struct {
	ref  ObjectRef
	ri   dynamic.ResourceInterface
	live *unstructured.Unstructured
}

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// namespaceObject is the environment's namespace as the engine applies it:
// labelled with stack, environment and slot, and for a slot with a ttl
// annotated with when it expires (live is the namespace as it is, nil when
// absent: see expiresAt).
func (e *reconcileRun) namespaceObject(live *unstructured.Unstructured) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(e.p.Namespace)
	labels := map[string]string{}
	maps.Copy(labels, e.p.NamespaceLabels)
	maps.Copy(labels, SlotLabels(e.p.Stack, e.p.Environment, e.p.Slot))
	if e.p.Slot == "" {
		delete(labels, LabelSlot) // not a slot environment
	}
	ns.SetLabels(labels)
	annotations := maps.Clone(e.p.NamespaceAnnotations)
	if at := expiresAt(live, e.p.TTL, e.now()); at != "" {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[AnnotationExpiresAt] = at
	}
	if len(annotations) > 0 {
		ns.SetAnnotations(annotations)
	}
	return ns
}

// applyNamespace creates or updates the environment's namespace with its
// labels.
func (e *reconcileRun) applyNamespace(ctx context.Context) error {
	ri := e.c.Dynamic.Resource(namespacesGVR)
	live, err := ri.Get(ctx, e.p.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return fmt.Errorf("namespace %s: read: %w", e.p.Namespace, err)
	}
	ns := e.namespaceObject(live)
	// A namespace being deleted accepts nothing new: let it go first.
	if live != nil && live.GetDeletionTimestamp() != nil {
		// Finalizers can keep a namespace terminating for good: say so
		// where the operator looks, and give up after a node's timeout.
		e.log.Warn("namespace is being deleted: waiting until it is gone", "namespace", e.p.Namespace, "timeout", e.opts.Timeout)
		wctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		defer cancel()
		if err := waitGone(wctx, ri, e.p.Namespace); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("namespace %s is being deleted: %w", e.p.Namespace, err)
			}
			return fmt.Errorf("namespace %s is being deleted and was not gone within %s (check its finalizers and status.conditions): %w", e.p.Namespace, e.opts.Timeout, err)
		}
	}
	if live != nil && live.GetDeletionTimestamp() != nil {
		live = nil // gone now
	}
	var a Action
	if live == nil {
		a, err = e.createNamespace(ctx, ns)
	} else {
		a, _, err = e.applyOver(ctx, "", ri, ns, live)
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", e.p.Namespace, err)
	}
	e.record("", refOf(ns), a)
	return nil
}

// createNamespace applies the namespace found absent, and tells from the
// API server's answer (201) whether this apply created it: only then can
// readInventory find it new.
func (e *reconcileRun) createNamespace(ctx context.Context, ns *unstructured.Unstructured) (Action, error) {
	body, err := ns.MarshalJSON()
	if err != nil {
		return "", err
	}
	force := e.opts.ForceConflicts
	res := e.c.Kube.CoreV1().RESTClient().Patch(types.ApplyPatchType).Resource("namespaces").Name(ns.GetName()).
		VersionedParams(&metav1.PatchOptions{FieldManager: FieldManager, Force: &force}, scheme.ParameterCodec).
		Body(body).Do(ctx)
	if err := res.Error(); err != nil {
		if ce := conflictError(refOf(ns), err); ce != nil {
			return "", ce
		}
		return "", fmt.Errorf("%s: apply: %w", refOf(ns), err)
	}
	var code int
	if res.StatusCode(&code); code == http.StatusCreated {
		e.createdNamespace = true
		return ActionCreated, nil
	}
	return ActionChanged, nil // made by someone else since it was read
}

// applyNode applies a node's objects: namespaces and CRDs first (CRDs
// waited for until established, then discovery refreshed), then the rest in
// manifest order.
func (e *reconcileRun) applyNode(ctx context.Context, s *plan.Node) ([]appliedObject, error) {
	var first, rest []*plan.Object
	for _, o := range s.Objects {
		switch gk := o.Object.GroupVersionKind().GroupKind(); gk {
		case schema.GroupKind{Kind: "Namespace"}, crdGK:
			first = append(first, o)
		default:
			rest = append(rest, o)
		}
	}
	var out []appliedObject
	var served []schema.GroupVersionKind
	for _, o := range first {
		ao, err := e.applyObject(ctx, s, o.Object)
		if err != nil {
			return out, err
		}
		if o.Object.GroupVersionKind().GroupKind() == crdGK {
			if err := e.waitObject(ctx, s, ao); err != nil {
				return out, err
			}
			served = append(served, servedKinds(o.Object)...)
		}
		out = append(out, ao)
	}
	if err := e.awaitDiscovery(ctx, served); err != nil {
		return out, err
	}
	for _, o := range rest {
		ao, err := e.applyObject(ctx, s, o.Object)
		if err != nil {
			return out, err
		}
		out = append(out, ao)
	}
	return out, nil
}

var crdGK = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// servedKinds lists the kinds a CustomResourceDefinition serves.
func servedKinds(crd *unstructured.Unstructured) []schema.GroupVersionKind {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var out []schema.GroupVersionKind
	for _, v := range versions {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		if isServed, _ := m["served"].(bool); isServed && name != "" {
			out = append(out, schema.GroupVersionKind{Group: group, Version: name, Kind: kind})
		}
	}
	return out
}

// awaitDiscovery refreshes the REST mapping until it knows every kind the
// node's CRDs serve: an Established CRD can reach discovery a moment later.
// It is bounded by the node's context.
func (e *reconcileRun) awaitDiscovery(ctx context.Context, kinds []schema.GroupVersionKind) error {
	if len(kinds) == 0 {
		return nil
	}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		e.c.Mapper.Reset()
		for _, gvk := range kinds {
			if _, err := e.c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				if meta.IsNoMatchError(err) {
					return false, nil
				}
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the API server to serve %v: %w", kinds, err)
	}
	return nil
}

// mapping resolves an object's resource, refreshing discovery once when
// the kind is unknown (a CRD applied by another node).
func (e *reconcileRun) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := e.c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		e.c.Mapper.Reset()
		m, err = e.c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the cluster serves no %s: apply its CustomResourceDefinition in a node this one depends on: %w", gvk, err)
		}
		return nil, err
	}
	return m, nil
}

// resourceFor returns the client for an object, fixing its namespace from
// the REST mapping and enforcing the slot scope rule.
func (e *reconcileRun) resourceFor(node string, clusterScoped bool, u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := e.mapping(u.GroupVersionKind())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", refOf(u), err)
	}
	return e.resourceOf(m, node, clusterScoped, u)
}

// resourceOf is resourceFor with the object's mapping already resolved.
func (e *reconcileRun) resourceOf(m *meta.RESTMapping, node string, clusterScoped bool, u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	slots := e.p.Slot != ""
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		u.SetNamespace("") // the planner defaulted one onto a kind it did not know
		if slots && !clusterScoped {
			return nil, &ScopeError{Node: node, Object: refOf(u), Reason: "is cluster-scoped: in slot environment " + e.p.Environment + " it would be shared by every slot"}
		}
		return e.c.Dynamic.Resource(m.Resource), nil
	}
	if u.GetNamespace() == "" {
		u.SetNamespace(e.p.Namespace)
	}
	if slots && !clusterScoped && u.GetNamespace() != e.p.Namespace {
		return nil, &ScopeError{Node: node, Object: refOf(u), Reason: "is outside the slot namespace " + e.p.Namespace}
	}
	return e.c.Dynamic.Resource(m.Resource).Namespace(u.GetNamespace()), nil
}

// applyObject labels and applies one object of a node.
func (e *reconcileRun) applyObject(ctx context.Context, s *plan.Node, in *unstructured.Unstructured) (appliedObject, error) {
	u := labelled(s, in)
	ri, err := e.resourceFor(s.Name, s.ClusterScoped, u)
	if err != nil {
		return appliedObject{}, err
	}
	if isJob(u) {
		return e.applyJob(ctx, s, ri, u)
	}
	// The hash of the object as rendered: a live object that carries it
	// and still holds every rendered value is left alone (applyOne).
	if _, err := stampSpecHash(u); err != nil {
		return appliedObject{}, fmt.Errorf("%s: %w", refOf(u), err)
	}
	a, live, err := e.applyOne(ctx, s.Name, ri, u)
	if err != nil {
		return appliedObject{}, err
	}
	e.record(s.Name, refOf(u), a)
	return appliedObject{ref: refOf(u), ri: ri, live: live}, nil
}

// labelled is a copy of a node's object with the labels the engine sets.
func labelled(s *plan.Node, in *unstructured.Unstructured) *unstructured.Unstructured {
	u := in.DeepCopy()
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManagedBy] = ManagedBy
	labels[LabelNode] = s.Name
	u.SetLabels(labels)
	return u
}

// applyOne server-side applies u, taking over client-side apply fields,
// and tells whether it created, changed or left the object alone.
func (e *reconcileRun) applyOne(ctx context.Context, node string, ri dynamic.ResourceInterface, u *unstructured.Unstructured) (Action, *unstructured.Unstructured, error) {
	live, err := e.readLive(ctx, ri, u)
	if err != nil {
		return "", nil, err
	}
	if live == nil && e.unread(u) {
		a, out, err := e.applyOver(ctx, node, ri, u, nil)
		if err != nil || !foreign(out) {
			return a, out, err
		}
		// It was there after all, made by someone else as the namespace
		// appeared: taken over as if it had been read.
		e.takeOver(node, u, out)
		return e.applyOver(ctx, node, ri, u, out)
	}
	return e.applyOver(ctx, node, ri, u, live)
}

// readLive reads u as it is in the cluster, nil when absent; in a
// namespace this run created it is not read and is taken as absent.
func (e *reconcileRun) readLive(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	if e.unread(u) {
		return nil, nil
	}
	return e.read(ctx, ri, u)
}

// unread tells whether u is in the namespace this run created.
func (e *reconcileRun) unread(u *unstructured.Unstructured) bool {
	return e.newNamespace && u.GetNamespace() == e.p.Namespace
}

func (e *reconcileRun) read(ctx context.Context, ri dynamic.ResourceInterface, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	live, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: read: %w", refOf(u), err)
	}
	return live, nil
}

// foreign tells whether an object the engine applied without reading it
// carries fields of another manager: it existed before the apply.
func foreign(out *unstructured.Unstructured) bool {
	for _, f := range out.GetManagedFields() {
		if f.Manager != FieldManager {
			return true
		}
	}
	return false
}

// applyOver is applyOne with u's live object already read (nil: absent).
func (e *reconcileRun) applyOver(ctx context.Context, node string, ri dynamic.ResourceInterface, u, live *unstructured.Unstructured) (Action, *unstructured.Unstructured, error) {
	ref := refOf(u)
	if live != nil {
		if adopted(live) {
			e.takeOver(node, u, live)
		}
		if unchanged(u, live) {
			return ActionUnchanged, live, nil
		}
		if err := e.upgradeClientSideApply(ctx, ri, live); err != nil {
			return "", nil, fmt.Errorf("%s: take over fields of client-side apply: %w", ref, err)
		}
	}
	out, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: e.opts.ForceConflicts})
	if err != nil {
		if ce := conflictError(ref, err); ce != nil {
			return "", nil, ce
		}
		if fields, ok := immutableFields(err); ok {
			if !e.opts.Recreate {
				return "", nil, &ImmutableError{Object: ref, Fields: fields, Err: err}
			}
			e.log.Info("re-creating object: an immutable field changed", "node", node, "object", ref.String(), "fields", fields)
			if err := e.deleteAndWait(ctx, ri, ref, metav1.DeletePropagationForeground); err != nil {
				return "", nil, err
			}
			out, err = ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: e.opts.ForceConflicts})
			if err != nil {
				return "", nil, fmt.Errorf("%s: re-create: %w", ref, err)
			}
			return ActionRecreated, out, nil
		}
		return "", nil, fmt.Errorf("%s: apply: %w", ref, err)
	}
	switch {
	case live == nil:
		e.log.Debug("created", "node", node, "object", ref.String())
		return ActionCreated, out, nil
	case live.GetResourceVersion() == out.GetResourceVersion():
		return ActionUnchanged, out, nil
	default:
		e.log.Debug("changed", "node", node, "object", ref.String())
		return ActionChanged, out, nil
	}
}

// takeOver marks u as adopted: live, found before its apply, is an object
// the engine did not create. (Kinds never pruned need no mark: prune keeps
// them anyway.)
func (e *reconcileRun) takeOver(node string, u, live *unstructured.Unstructured) {
	if !markTakenOver(u) {
		return
	}
	if live.GetLabels()[LabelManagedBy] != ManagedBy || live.GetAnnotations()[AnnotationAdopted] != "true" {
		e.log.Warn("taking over an object the engine did not create; prune will keep it if it leaves the stack", "node", node, "object", refOf(u).String())
	}
}

// markTakenOver marks u, an object the engine takes over, as adopted
// unless its kind is never pruned anyway; it tells whether it did. Every
// apply keeps saying so: the field is the engine's.
func markTakenOver(u *unstructured.Unstructured) bool {
	if neverPruned[refOf(u).gvk().GroupKind()] {
		return false
	}
	markAdopted(u)
	return true
}

// adopted reports whether live, found before an apply, is an object the
// engine did not create: not labelled as the engine's, or marked adopted by
// an earlier apply.
func adopted(live *unstructured.Unstructured) bool {
	return live.GetLabels()[LabelManagedBy] != ManagedBy || live.GetAnnotations()[AnnotationAdopted] == "true"
}

func markAdopted(u *unstructured.Unstructured) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationAdopted] = "true"
	u.SetAnnotations(a)
}

// upgradeClientSideApply moves the fields owned by client-side kubectl
// apply to FieldManager, so the next apply removes what the stack dropped.
func (e *reconcileRun) upgradeClientSideApply(ctx context.Context, ri dynamic.ResourceInterface, live *unstructured.Unstructured) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, csaManagers, FieldManager)
	if err != nil || patch == nil {
		return err
	}
	e.log.Info("taking over fields written by client-side kubectl apply", "object", refOf(live).String())
	if _, err := ri.Patch(ctx, live.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return err
	}
	return nil
}

// conflictManager reads the manager out of a conflict cause message:
// `conflict with "kubectl-edit" using apps/v1`.
var conflictManager = regexp.MustCompile(`conflict with "([^"]*)"`)

func conflictError(ref ObjectRef, err error) *ConflictError {
	if !apierrors.IsConflict(err) {
		return nil
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) || se.Status().Details == nil {
		return nil
	}
	ce := &ConflictError{Object: ref}
	for _, c := range se.Status().Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		fc := FieldConflict{Field: c.Field}
		if m := conflictManager.FindStringSubmatch(c.Message); m != nil {
			fc.Manager = m[1]
		}
		ce.Conflicts = append(ce.Conflicts, fc)
	}
	if len(ce.Conflicts) == 0 {
		return nil
	}
	return ce
}

// immutableFields reports whether err refuses a change of immutable
// fields, and which.
func immutableFields(err error) ([]string, bool) {
	if !apierrors.IsInvalid(err) {
		return nil, false
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		return nil, false
	}
	st := se.Status()
	var fields []string
	found := false
	if st.Details != nil {
		for _, c := range st.Details.Causes {
			if strings.Contains(c.Message, "immutable") {
				found = true
				if c.Field != "" {
					fields = append(fields, c.Field)
				}
			}
		}
	}
	if !found && strings.Contains(st.Message, "immutable") {
		found = true
	}
	return fields, found
}

func isJob(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "batch" && gvk.Kind == "Job"
}

// specHash hashes the object as rendered (labels included).
func specHash(u *unstructured.Unstructured) (string, error) {
	data, err := json.Marshal(u.Object) // maps marshal with sorted keys
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}

// stampSpecHash sets u's spec-hash annotation to the hash of u as
// rendered, and returns it.
func stampSpecHash(u *unstructured.Unstructured) (string, error) {
	hash, err := specHash(u)
	if err != nil {
		return "", err
	}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationSpecHash] = hash
	u.SetAnnotations(ann)
	return hash, nil
}

// applyJob leaves an unchanged Job alone and replaces a changed one: a
// Job's pod template cannot be updated.
func (e *reconcileRun) applyJob(ctx context.Context, s *plan.Node, ri dynamic.ResourceInterface, u *unstructured.Unstructured) (appliedObject, error) {
	ref := refOf(u)
	hash, err := stampSpecHash(u)
	if err != nil {
		return appliedObject{}, fmt.Errorf("%s: %w", ref, err)
	}
	live, err := e.readLive(ctx, ri, u)
	switch {
	case err != nil:
		return appliedObject{}, err
	case live == nil:
	case jobKept(live, hash):
		e.record(s.Name, ref, ActionUnchanged)
		return appliedObject{ref: ref, ri: ri, live: live}, nil
	default:
		// A failed Job is run again even when unchanged: its cause may
		// have been outside it (a database not yet there), and keeping it
		// would fail every later reconcile until someone deletes it.
		msg := "replacing changed Job"
		if jobFailed(live) {
			msg = "re-running a failed Job"
		}
		if live.GetLabels()[LabelManagedBy] != ManagedBy {
			// A Job cannot be taken over field by field: it is replaced.
			e.log.Warn("replacing a Job the engine did not create", "node", s.Name, "object", ref.String())
		} else {
			e.log.Info(msg, "node", s.Name, "object", ref.String())
		}
		if err := e.deleteAndWait(ctx, ri, ref, metav1.DeletePropagationBackground); err != nil {
			return appliedObject{}, err
		}
	}
	out, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: e.opts.ForceConflicts})
	if err != nil {
		if ce := conflictError(ref, err); ce != nil {
			return appliedObject{}, ce
		}
		return appliedObject{}, fmt.Errorf("%s: apply: %w", ref, err)
	}
	a := ActionCreated
	if live != nil {
		a = ActionRecreated
	}
	e.record(s.Name, ref, a)
	return appliedObject{ref: ref, ri: ri, live: out}, nil
}

// jobKept tells whether a reconcile leaves the live Job alone: it has the
// rendered hash, is not being deleted and has not failed.
func jobKept(live *unstructured.Unstructured, hash string) bool {
	return live.GetAnnotations()[AnnotationSpecHash] == hash && live.GetDeletionTimestamp() == nil && !jobFailed(live)
}

func jobFailed(u *unstructured.Unstructured) bool {
	st, ok := conditionStatus(u, "Failed")
	return ok && st == "True"
}

// deleteAndWait deletes an object and returns when it is gone.
func (e *reconcileRun) deleteAndWait(ctx context.Context, ri dynamic.ResourceInterface, ref ObjectRef, prop metav1.DeletionPropagation) error {
	err := ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &prop})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: delete: %w", ref, err)
	}
	if err := waitGone(ctx, ri, ref.Name); err != nil {
		return fmt.Errorf("%s: waiting for deletion: %w", ref, err)
	}
	return nil
}

// unchanged tells whether applying u (stamped with its spec hash) would
// leave live as it is, so the apply can be skipped: a no-op reconcile then
// costs one read per object, and an admission policy, which the API server
// rewrites on every apply (its status manager's entry moves in
// managedFields), is not changed by a reconcile that changes nothing.
//
// live must carry u's spec hash, so the last apply set the same fields
// (none the stack dropped is left to remove), and hold every value u sets,
// so nothing changed them since (a field edited by hand is put back by an
// apply). Fields written by client-side kubectl apply are taken over by an
// apply, so an object that has some is never unchanged.
func unchanged(u, live *unstructured.Unstructured) bool {
	hash := u.GetAnnotations()[AnnotationSpecHash]
	if hash == "" || live.GetAnnotations()[AnnotationSpecHash] != hash || live.GetDeletionTimestamp() != nil {
		return false
	}
	if patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, csaManagers, FieldManager); err != nil || patch != nil {
		return false
	}
	want := maps.Clone(u.Object)
	delete(want, "status")
	if meta, ok := want["metadata"].(map[string]any); ok {
		meta = maps.Clone(meta)
		delete(meta, "creationTimestamp")
		want["metadata"] = meta
	}
	return subset(want, live.Object)
}

// subset reports whether every value want sets is in got: maps key by key,
// lists element by element (of the same length), scalars equal.
func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return len(w) == 0 && got == nil
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return fmt.Sprint(want) == fmt.Sprint(got)
	}
}
