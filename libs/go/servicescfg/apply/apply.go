// Package apply brings a cluster to a plan: the environment's namespace, the
// engine-owned Secrets, then every node of the plan's DAG applied with
// server-side apply and waited for, a node starting when everything it comes
// after is ready. Objects that left the stack are pruned afterwards.
//
// One field manager (FieldManager) owns everything the engine writes, so the
// CLI and a platform's Go service applying the same plan agree. The package
// never prints: progress goes to an Observer, diagnostics to a slog.Logger.
// Secret values never appear in events, logs or errors.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply/internal/dag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// FieldManager is the server-side apply field manager of everything the
// engine writes. It never changes: a different name would fight over fields.
const FieldManager = "codex-bootstrap"

// Labels and annotations the engine sets.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	LabelNode       = "codex-k8s.dev/node"
	LabelStack      = "codex-k8s.dev/stack"
	LabelEnv        = "codex-k8s.dev/env"
	LabelSlot       = "codex-k8s.dev/slot"
	AnnotationPrune = "codex-k8s.dev/prune"
	// AnnotationAdopted marks an object that existed before the engine
	// first applied it (made by hand, by client-side kubectl apply, by
	// another tool). The engine manages its fields from then on, but did
	// not create it: prune keeps it unless it is annotated prune: allow.
	AnnotationAdopted = "codex-k8s.dev/adopted"
	// AnnotationSpecHash holds the hash of an object as rendered: an
	// unchanged completed Job is left alone, and an object that carries
	// it and still holds every rendered value is not applied again.
	AnnotationSpecHash = "codex-k8s.dev/spec-hash"
	// AnnotationExpiresAt is when a slot namespace expires (RFC 3339, UTC):
	// each reconcile of a slot environment with a ttl moves it to now +
	// ttl, and PruneExpired deletes the slots past it.
	AnnotationExpiresAt = "codex-k8s.dev/expires-at"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "codex-bootstrap"
	// PruneAllow is the value of AnnotationPrune that lets a namespace,
	// claim or CRD be pruned.
	PruneAllow = "allow"
)

// DefaultTimeout is a node's readiness timeout when neither the caller, nor
// the plan (spec.deploy.timeout), nor the node sets one.
const DefaultTimeout = 5 * time.Minute

// DefaultParallel bounds the nodes applied at once. A node spends most of
// its time waiting for readiness, not loading the API server, so the bound
// is set by how wide a group usually is, not by the cores of the machine.
const DefaultParallel = 8

// ConfigValues resolves bootstrap variables, secret ones included
// (*config.Values).
type ConfigValues interface {
	Get(name string) (string, bool)
}

// Options tune a reconcile. The zero value is usable.
type Options struct {
	// Parallel bounds the nodes in flight; DefaultParallel when zero.
	Parallel int
	// Timeout is a node's readiness timeout unless the node sets its own;
	// the plan's Timeout (spec.deploy.timeout) when zero, then
	// DefaultTimeout.
	Timeout time.Duration
	// ForceConflicts takes over fields owned by other managers.
	ForceConflicts bool
	// Recreate deletes and re-creates an object whose update is refused
	// because an immutable field changed.
	Recreate bool
	// NoPrune keeps objects that left the stack.
	NoPrune bool
	// Values supplies the fromConfig values of spec.secrets.
	Values ConfigValues
	// Observer receives per-node progress.
	Observer Observer
	// Logger receives diagnostics; discarded when nil.
	Logger *slog.Logger
	// Holder identifies this run in the namespace's lease; user@host pid N
	// when empty.
	Holder string
	// LeaseDuration is how long the lease holds without renewal (30s when
	// zero); a lease not renewed for that long is taken over.
	LeaseDuration time.Duration
	// LockWait is how long to wait for another run's lease; zero fails at once.
	LockWait time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SlotDeployer, for a slot plan, binds a ClusterRole to the deployer in
	// the slot namespace right after creating it: how a platform worker
	// with no rights of its own inside namespaces deploys a slot. Ignored
	// outside slot environments.
	SlotDeployer *SlotDeployer
}

// Action is what happened to one object.
type Action string

const (
	ActionCreated   Action = "created"
	ActionChanged   Action = "changed"
	ActionRecreated Action = "recreated"
	ActionUnchanged Action = "unchanged"
	ActionPruned    Action = "pruned"
)

// ObjectRef names an object.
type ObjectRef struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders "Kind namespace/name" or "Kind name".
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// key identifies the object regardless of the version it was written with.
func (r ObjectRef) key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

func (r ObjectRef) gvk() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

func refOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// ObjectChange is one object's outcome.
type ObjectChange struct {
	Node   string
	Object ObjectRef
	Action Action
}

// NodeResult is one node's outcome.
type NodeResult struct {
	Name     string
	Group    string
	Status   Status // ready, failed or skipped
	Duration time.Duration
	// Err is why a node failed; Cause why it was skipped.
	Err   error
	Cause string
}

// Result is the outcome of a reconcile.
type Result struct {
	Namespace string
	Nodes     []NodeResult
	Objects   []ObjectChange
	// Counts of Objects by action; Changed includes recreated objects.
	Created, Changed, Unchanged, Pruned int
	Duration                            time.Duration
}

// NoChanges reports whether the run modified nothing.
func (r *Result) NoChanges() bool { return r.Created+r.Changed+r.Pruned == 0 }

// Failed returns the nodes that failed.
func (r *Result) Failed() []NodeResult { return r.nodes(StatusFailed) }

// Skipped returns the nodes that were skipped.
func (r *Result) Skipped() []NodeResult { return r.nodes(StatusSkipped) }

func (r *Result) nodes(s Status) []NodeResult {
	var out []NodeResult
	for _, n := range r.Nodes {
		if n.Status == s {
			out = append(out, n)
		}
	}
	return out
}

// NodesError reports nodes that failed and the nodes skipped because of them.
type NodesError struct {
	Failed  []NodeResult
	Skipped []NodeResult
}

func (e *NodesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d node(s) failed", len(e.Failed))
	for _, n := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %v", n.Name, n.Err)
	}
	if len(e.Skipped) > 0 {
		names := make([]string, len(e.Skipped))
		for i, n := range e.Skipped {
			names[i] = n.Name
		}
		fmt.Fprintf(&b, "\n  skipped: %s", strings.Join(names, ", "))
	}
	return b.String()
}

// Unwrap returns the failures, so errors.As finds a ConflictError or
// JobFailedError among them.
func (e *NodesError) Unwrap() []error {
	var out []error
	for _, n := range e.Failed {
		out = append(out, n.Err)
	}
	return out
}

// Clients are what Reconcile talks to the cluster with.
type Clients struct {
	Dynamic dynamic.Interface
	Kube    kubernetes.Interface
	Mapper  meta.ResettableRESTMapper
}

// NewClients builds the clients from a REST config. A zero QPS is raised
// from client-go's default of 5 so that tens of nodes are not throttled:
// 100 requests per second after a burst of 200, for the dynamic client
// (objects, their watches) and again for the typed one (namespace, lease,
// pods). A process that reconciles many namespaces at once through the
// same Clients (the platform worker's slots) shares those limits: a
// reconcile that changes nothing takes about 1.4 requests per object (19
// for a slot of 14 objects), a first one into a new namespace about 30 a
// slot (applies, watches, lease), so such a worker sets QPS and Burst on
// cfg to what it starts at once, e.g. QPS 300 and Burst 600 for 20 slots;
// the API server's own flow control still shares it with other clients.
func NewClients(cfg *rest.Config) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 100, 200
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	return &Clients{Dynamic: dyn, Kube: kube, Mapper: mapper}, nil
}

// Reconcile applies p to the cluster cfg points at.
func Reconcile(ctx context.Context, cfg *rest.Config, p *plan.Plan, opts Options) (*Result, error) {
	c, err := NewClients(cfg)
	if err != nil {
		return nil, err
	}
	return ReconcileWith(ctx, c, p, opts)
}

// ReconcileWith applies p with the given clients. On failure it returns the
// result so far with the error: a *NodesError when nodes failed, an error
// wrapping ctx.Err() when interrupted.
func ReconcileWith(ctx context.Context, c *Clients, p *plan.Plan, opts Options) (*Result, error) {
	e := newReconcileRun(c, p, opts)
	start := e.now()
	res, err := e.run(ctx)
	res.Duration = e.now().Sub(start)
	return res, err
}

type reconcileRun struct {
	c     *Clients
	p     *plan.Plan
	opts  Options
	log   *slog.Logger
	obs   Observer
	now   func() time.Time
	nodes map[string]*plan.Node

	mu        sync.Mutex
	res       *Result
	durations map[string]time.Duration
	// invData is the inventory the ConfigMap holds, as read or last
	// written by this run: writing it again is skipped.
	invData string
	// createdNamespace is set when this run's apply created the
	// namespace; newNamespace when, besides, no inventory was there once
	// the lease was held (no other reconcile wrote anything in it): then
	// nothing in it is read before being applied (readLive).
	createdNamespace, newNamespace bool
}

func newReconcileRun(c *Clients, p *plan.Plan, opts Options) *reconcileRun {
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Timeout <= 0 {
		opts.Timeout = p.Timeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 30 * time.Second
	}
	if opts.Holder == "" {
		opts.Holder = DefaultHolder()
	}
	e := &reconcileRun{c: c, p: p, opts: opts, log: opts.Logger, obs: opts.Observer, now: opts.Now,
		nodes: map[string]*plan.Node{}, res: &Result{Namespace: p.Namespace}, durations: map[string]time.Duration{}}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if e.obs == nil {
		e.obs = ObserverFunc(func(Event) {})
	}
	if e.now == nil {
		e.now = time.Now
	}
	for _, s := range p.Nodes {
		e.nodes[s.Name] = s
	}
	return e
}

// DefaultHolder is "user@host pid N".
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

func (e *reconcileRun) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.obs.Event(ev)
}

func (e *reconcileRun) record(node string, ref ObjectRef, a Action) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.Objects = append(e.res.Objects, ObjectChange{Node: node, Object: ref, Action: a})
	switch a {
	case ActionCreated:
		e.res.Created++
	case ActionChanged, ActionRecreated:
		e.res.Changed++
	case ActionUnchanged:
		e.res.Unchanged++
	case ActionPruned:
		e.res.Pruned++
	}
}

func (e *reconcileRun) run(ctx context.Context) (*Result, error) {
	if err := e.checkPlan(); err != nil {
		return e.res, err
	}
	if err := e.checkSecretValues(); err != nil {
		return e.res, err
	}
	if err := e.applyNamespace(ctx); err != nil {
		return e.res, err
	}
	if err := e.bindDeployer(ctx); err != nil {
		return e.res, err
	}
	lease, err := e.acquireLease(ctx)
	if err != nil {
		return e.res, err
	}
	// The lease renewer cancels the run if the lease is lost.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopRenew := lease.keepAlive(runCtx, cancel)
	defer func() {
		stopRenew()
		// Release even when interrupted: the parent context may be done.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer rcancel()
		if err := lease.release(rctx); err != nil {
			e.log.Warn("releasing the reconcile lease", "namespace", e.p.Namespace, "err", err)
		}
	}()

	err = e.reconcile(runCtx)
	if cause := context.Cause(runCtx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		// The lease was lost: that is the reason, not the nodes' errors.
		return e.res, cause
	}
	return e.res, err
}

func (e *reconcileRun) reconcile(ctx context.Context) error {
	inv, err := e.readInventory(ctx)
	if err != nil {
		return err
	}
	planned := e.plannedInventory()
	// Record the union first: if this run dies, the next one still knows
	// every object either plan put there.
	if err := e.writeInventory(ctx, inv.union(planned)); err != nil {
		return err
	}
	if err := e.applySecrets(ctx); err != nil {
		return err
	}

	vs := make([]dag.Node, 0, len(e.p.Nodes))
	for _, s := range e.p.Nodes {
		vs = append(vs, dag.Node{Name: s.Name, After: s.After, Stage: s.Stage, StageName: "group " + s.Group})
	}
	results := dag.Walk(ctx, vs, e.opts.Parallel, e.runNode, dag.Hooks{
		Waiting: func(name string, on []string) {
			s := e.nodes[name]
			e.emit(Event{Node: name, Group: s.Group, Phase: PhaseApply, Status: StatusWaiting, Waiting: on, Objects: objectNames(s)})
		},
		Skipped: func(name, cause string) {
			s := e.nodes[name]
			e.log.Info("node skipped", "node", name, "cause", cause)
			e.emit(Event{Node: name, Group: s.Group, Phase: PhaseApply, Status: StatusSkipped, Message: cause, Objects: objectNames(s)})
		},
	})
	var nerr NodesError
	for _, s := range e.p.Nodes {
		r := results[s.Name]
		e.mu.Lock()
		nr := NodeResult{Name: s.Name, Group: s.Group, Err: r.Err, Cause: r.Cause, Duration: e.durations[s.Name]}
		e.mu.Unlock()
		switch r.Outcome {
		case dag.Ready:
			nr.Status = StatusReady
		case dag.Failed:
			nr.Status = StatusFailed
			nerr.Failed = append(nerr.Failed, nr)
		default:
			nr.Status = StatusSkipped
			nerr.Skipped = append(nerr.Skipped, nr)
		}
		e.mu.Lock()
		e.res.Nodes = append(e.res.Nodes, nr)
		e.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reconcile of namespace %s interrupted: %w", e.p.Namespace, err)
	}
	if len(nerr.Failed) > 0 || len(nerr.Skipped) > 0 {
		return &nerr
	}
	if e.opts.NoPrune {
		return nil
	}
	// Listed again now that the node's CRDs are served: a custom resource
	// planned before its CRD existed gets its true scope.
	planned = e.plannedInventory()
	next, err := e.prune(ctx, inv, planned)
	if werr := e.writeInventory(ctx, next); err == nil {
		err = werr
	}
	return err
}

// checkPlan rejects what cannot be applied before anything is written.
func (e *reconcileRun) checkPlan() error {
	if e.p.Namespace == "" {
		return errors.New("plan has no namespace")
	}
	for _, s := range e.p.Nodes {
		if s.Timeout != "" {
			if _, err := time.ParseDuration(s.Timeout); err != nil {
				return fmt.Errorf("node %s: invalid timeout %q: %w", s.Name, s.Timeout, err)
			}
		}
	}
	return nil
}

func (e *reconcileRun) nodeTimeout(s *plan.Node) time.Duration {
	if s.Timeout != "" {
		if d, err := time.ParseDuration(s.Timeout); err == nil && d > 0 {
			return d
		}
	}
	return e.opts.Timeout
}

// runNode applies one node's objects and waits until they are ready.
func (e *reconcileRun) runNode(ctx context.Context, name string) error {
	s := e.nodes[name]
	objs := objectNames(s)
	start := e.now()
	timeout := e.nodeTimeout(s)
	e.emit(Event{Node: name, Group: s.Group, Phase: PhaseApply, Status: StatusStarted, Objects: objs})
	e.log.Info("node started", "node", name, "group", s.Group, "objects", len(s.Objects))

	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("node %s not ready within %v", name, timeout))
	defer cancel()
	defer func() {
		e.mu.Lock()
		e.durations[name] = e.now().Sub(start)
		e.mu.Unlock()
	}()
	fail := func(phase Phase, err error) error {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), err) {
			err = context.Cause(ctx)
		}
		if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) && !errors.Is(err, ErrLeaseLost) {
			err = fmt.Errorf("%w: %w", cause, err) // stopped because the lease went, not by an interrupt
		}
		msg := err.Error()
		if errors.Is(err, context.Canceled) && !errors.Is(err, ErrLeaseLost) {
			msg = "interrupted"
		}
		e.log.Info("node failed", "node", name, "err", err)
		e.emit(Event{Node: name, Group: s.Group, Phase: phase, Status: StatusFailed, Objects: objs, Duration: e.now().Sub(start), Message: msg})
		return err
	}
	applied, err := e.applyNode(ctx, s)
	if err != nil {
		return fail(PhaseApply, e.explainTimeout(ctx, err))
	}
	e.emit(Event{Node: name, Group: s.Group, Phase: PhaseWait, Status: StatusStarted, Objects: objs, Duration: e.now().Sub(start)})
	if err := e.waitAll(ctx, s, applied); err != nil {
		return fail(PhaseWait, e.explainTimeout(ctx, err))
	}
	if err := e.populateWorkspace(ctx, s); err != nil {
		return fail(PhaseWait, e.explainTimeout(ctx, err))
	}
	d := e.now().Sub(start)
	e.log.Info("node ready", "node", name, "duration", d)
	e.emit(Event{Node: name, Group: s.Group, Phase: PhaseWait, Status: StatusReady, Objects: objs, Duration: d})
	return nil
}

// explainTimeout replaces a bare deadline error with the node's timeout
// cause, keeping what was being waited for.
func (e *reconcileRun) explainTimeout(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

func objectNames(s *plan.Node) []string {
	out := make([]string, 0, len(s.Objects))
	for _, o := range s.Objects {
		out = append(out, refOf(o.Object).String())
	}
	return out
}
