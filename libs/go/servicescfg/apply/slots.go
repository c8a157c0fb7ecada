package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// ErrNotOwned is wrapped by a *NotOwnedError: the namespace exists but is
// not the slot the caller named, of this stack.
var ErrNotOwned = errors.New("namespace is not owned by this stack's slot")

// NotOwnedError is a namespace that DeleteSlot refused to delete: its
// labels do not say it is this stack's slot.
type NotOwnedError struct {
	Namespace string
	// Want are the labels a slot namespace of the stack carries; Got the
	// namespace's values of the same keys ("" when absent).
	Want, Got map[string]string
}

func (e *NotOwnedError) Error() string {
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(e.Want)) {
		if e.Got[k] != e.Want[k] {
			got := e.Got[k]
			if got == "" {
				got = "(absent)"
			}
			diff = append(diff, fmt.Sprintf("%s=%s, want %s", k, got, e.Want[k]))
		}
	}
	return fmt.Sprintf("namespace %s is not a slot namespace of this stack (%s): refusing to delete it; "+
		"delete it with kubectl if it really is to go", e.Namespace, strings.Join(diff, "; "))
}

// Unwrap lets errors.Is match ErrNotOwned.
func (e *NotOwnedError) Unwrap() error { return ErrNotOwned }

// SlotOptions tune DeleteSlot and PruneExpired. The zero value deletes
// without waiting.
type SlotOptions struct {
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Wait returns only once the namespaces are gone (their objects
	// finalized), or Timeout passed.
	Wait bool
	// Timeout bounds Wait; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// SlotNamespace is one slot namespace of a stack.
type SlotNamespace struct {
	Namespace string
	Slot      string
	// ExpiresAt is the namespace's codex-k8s.dev/expires-at; zero when it
	// has none (the slot never expires).
	ExpiresAt time.Time
	// Problem says why PruneExpired left an expired-looking namespace
	// alone (an unreadable expires-at, a refresh while it looked).
	Problem string
}

// SlotResult says what DeleteSlot or PruneExpired did.
type SlotResult struct {
	// Deleted are the namespaces deleted (or, with DryRun, to delete).
	Deleted []SlotNamespace
	// Kept are the slot namespaces PruneExpired left: not expired yet, no
	// expiry, or a Problem.
	Kept []SlotNamespace
	// Absent is set by DeleteSlot when the namespace did not exist.
	Absent bool
}

// SlotLabels are the labels reconcile puts on a slot namespace of a stack,
// which DeleteSlot checks before deleting: managed by codex-bootstrap, the
// stack, the environment, the slot.
func SlotLabels(stackName, env, slot string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelStack: stackName, LabelEnv: env, LabelSlot: slot}
}

// DeleteSlot deletes the namespace of a slot plan (p.Slot set), after
// checking from its labels that it is that slot of that stack: anything
// else is a *NotOwnedError and nothing is deleted. A missing namespace is
// not an error (Result.Absent).
func DeleteSlot(ctx context.Context, cfg *rest.Config, p *plan.Plan, opts SlotOptions) (*SlotResult, error) {
	c, err := NewClients(cfg)
	if err != nil {
		return nil, err
	}
	return DeleteSlotWith(ctx, c, p, opts)
}

// DeleteSlotWith is DeleteSlot with the given clients.
func DeleteSlotWith(ctx context.Context, c *Clients, p *plan.Plan, opts SlotOptions) (*SlotResult, error) {
	if p.Slot == "" {
		return nil, fmt.Errorf("delete namespace %s: environment %s is not a slot environment: only slots are deleted this way", p.Namespace, p.Environment)
	}
	res := &SlotResult{}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		res.Absent = true
		return res, nil
	case err != nil:
		return nil, fmt.Errorf("read namespace %s: %w", p.Namespace, err)
	}
	want := SlotLabels(p.Stack, p.Environment, p.Slot)
	if !labels.SelectorFromSet(want).Matches(labels.Set(ns.Labels)) {
		got := map[string]string{}
		for k := range want {
			got[k] = ns.Labels[k]
		}
		return nil, &NotOwnedError{Namespace: p.Namespace, Want: want, Got: got}
	}
	sn := slotNamespace(ns)
	if err := deleteNamespace(ctx, c, ns, false, opts); err != nil {
		return nil, err
	}
	res.Deleted = append(res.Deleted, sn)
	return res, nil
}

// PruneExpired deletes the slot namespaces of one slot environment of a
// stack whose codex-k8s.dev/expires-at has passed. It finds them by their
// labels, so it never touches a namespace of another stack, environment or
// tool. A namespace refreshed by a reconcile between the read and the
// delete is kept (the delete carries its resourceVersion as a
// precondition).
func PruneExpired(ctx context.Context, cfg *rest.Config, s *stack.Stack, env string, opts SlotOptions) (*SlotResult, error) {
	c, err := NewClients(cfg)
	if err != nil {
		return nil, err
	}
	return PruneExpiredWith(ctx, c, s, env, opts)
}

// PruneExpiredWith is PruneExpired with the given clients.
func PruneExpiredWith(ctx context.Context, c *Clients, s *stack.Stack, env string, opts SlotOptions) (*SlotResult, error) {
	renv, err := s.ResolveEnvironment(env)
	if err != nil {
		return nil, fmt.Errorf("prune expired slots: %w", err)
	}
	if !renv.Slots {
		return nil, fmt.Errorf("prune expired slots: environment %s is not a slot environment", env)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	sel := labels.SelectorFromSet(map[string]string{LabelManagedBy: ManagedBy, LabelStack: s.Metadata.Name, LabelEnv: env}).String() + "," + LabelSlot
	list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list slot namespaces of %s/%s: %w", s.Metadata.Name, env, err)
	}
	res := &SlotResult{}
	t := now()
	for i := range list.Items {
		ns := &list.Items[i]
		sn := slotNamespace(ns)
		switch {
		case ns.DeletionTimestamp != nil, sn.Problem != "", sn.ExpiresAt.IsZero(), sn.ExpiresAt.After(t):
			res.Kept = append(res.Kept, sn)
			continue
		}
		err := deleteNamespace(ctx, c, ns, true, opts)
		switch {
		case apierrors.IsConflict(err):
			sn.Problem = "refreshed by a reconcile while it was being pruned"
			res.Kept = append(res.Kept, sn)
		case apierrors.IsNotFound(err):
		case err != nil:
			return res, err
		default:
			res.Deleted = append(res.Deleted, sn)
		}
	}
	return res, nil
}

// slotNamespace reads what a slot namespace says of itself.
func slotNamespace(ns *corev1.Namespace) SlotNamespace {
	sn := SlotNamespace{Namespace: ns.Name, Slot: ns.Labels[LabelSlot]}
	if v, ok := ns.Annotations[AnnotationExpiresAt]; ok {
		at, err := time.Parse(time.RFC3339, v)
		if err != nil {
			sn.Problem = fmt.Sprintf("annotation %s=%q is not an RFC 3339 time", AnnotationExpiresAt, v)
		}
		sn.ExpiresAt = at
	}
	return sn
}

// deleteNamespace deletes ns as read (its UID, and with sameVersion its
// resourceVersion, as preconditions), then waits for it to go if asked.
func deleteNamespace(ctx context.Context, c *Clients, ns *corev1.Namespace, sameVersion bool, opts SlotOptions) error {
	if opts.DryRun {
		return nil
	}
	pre := &metav1.Preconditions{UID: &ns.UID}
	if sameVersion {
		pre.ResourceVersion = &ns.ResourceVersion
	}
	policy := metav1.DeletePropagationBackground
	err := c.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{Preconditions: pre, PropagationPolicy: &policy})
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
	}
	if !opts.Wait {
		return nil
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitGone(wctx, c.Dynamic.Resource(namespacesGVR), ns.Name); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
		return fmt.Errorf("namespace %s was deleted but not gone within %s (check its finalizers and status.conditions): %w", ns.Name, timeout, err)
	}
	return nil
}

// expiresAt is the codex-k8s.dev/expires-at a reconcile writes on its
// namespace: "" without a ttl; else now + ttl, unless the live namespace
// already says a time between now + ttl less a hundredth of it and now +
// ttl. Kept that way, a reconcile repeated within minutes changes nothing,
// and a slot never expires sooner than 99% of its ttl after a reconcile.
func expiresAt(live *unstructured.Unstructured, ttl time.Duration, now time.Time) string {
	if ttl <= 0 {
		return ""
	}
	want := now.Add(ttl).UTC().Truncate(time.Second)
	if live != nil {
		if v, ok := live.GetAnnotations()[AnnotationExpiresAt]; ok {
			if at, err := time.Parse(time.RFC3339, v); err == nil && !at.After(want) && !at.Before(want.Add(-ttl/100)) {
				return v
			}
		}
	}
	return want.Format(time.RFC3339)
}

// DeployerBinding is the name of the RoleBinding Options.SlotDeployer
// makes in a slot namespace.
const DeployerBinding = "codex-bootstrap-deployer"

// SlotDeployer is a ClusterRole bound to the deployer in each slot
// namespace it creates (see Options.SlotDeployer).
type SlotDeployer struct {
	// ClusterRole holds what a slot's reconcile needs inside its
	// namespace, e.g. codex-k8s-slot-deployer.
	ClusterRole string
	// Subject is who deploys: the platform worker's ServiceAccount.
	Subject rbacv1.Subject
}

// bindDeployer applies the RoleBinding of Options.SlotDeployer in a slot
// namespace and, when it is new, waits until the API server's authorizer
// grants what it binds (it learns of bindings through a watch).
func (e *reconcileRun) bindDeployer(ctx context.Context) error {
	d := e.opts.SlotDeployer
	if d == nil || e.p.Slot == "" {
		return nil
	}
	rb := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1",
		"kind":       "RoleBinding",
		"metadata": map[string]any{
			"name": DeployerBinding, "namespace": e.p.Namespace,
			"labels": map[string]any{LabelManagedBy: ManagedBy},
		},
		"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": d.ClusterRole},
		"subjects": []any{map[string]any{
			"kind": d.Subject.Kind, "name": d.Subject.Name, "namespace": d.Subject.Namespace, "apiGroup": d.Subject.APIGroup,
		}},
	}}
	ri := e.c.Dynamic.Resource(rbacv1.SchemeGroupVersion.WithResource("rolebindings")).Namespace(e.p.Namespace)
	a, _, err := e.applyOne(ctx, "", ri, rb)
	if err != nil {
		return fmt.Errorf("bind %s in namespace %s: %w", d.ClusterRole, e.p.Namespace, err)
	}
	e.record("", refOf(rb), a)
	if a == ActionUnchanged {
		return nil
	}
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: e.p.Namespace, Verb: "create", Group: "coordination.k8s.io", Resource: "leases"},
	}}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := e.c.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return r.Status.Allowed, nil
	})
	if err != nil {
		return fmt.Errorf("namespace %s: the binding of %s does not grant leases there (does the ClusterRole exist and hold them?): %w", e.p.Namespace, d.ClusterRole, err)
	}
	return nil
}
