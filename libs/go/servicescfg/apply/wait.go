package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// JobFailedError is a Job that failed, with what its pod said.
type JobFailedError struct {
	Object ObjectRef
	// Reason is the Job's Failed condition; Pod describes the last pod
	// (phase, container exit codes); Log is its log tail when the cluster
	// serves logs, LogErr why not otherwise.
	Reason string
	Pod    string
	Log    string
	LogErr string
}

func (e *JobFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %s", e.Object, e.Reason)
	if e.Pod != "" {
		fmt.Fprintf(&b, "\n    pod %s", e.Pod)
	}
	switch {
	case e.Log != "":
		fmt.Fprintf(&b, "\n    log tail:\n      %s", strings.ReplaceAll(strings.TrimRight(e.Log, "\n"), "\n", "\n      "))
	case e.LogErr != "":
		fmt.Fprintf(&b, "\n    log unavailable: %s", e.LogErr)
	}
	return b.String()
}

// ObjectFailedError is an object whose status says it failed.
type ObjectFailedError struct {
	Object  ObjectRef
	Message string
}

func (e *ObjectFailedError) Error() string { return fmt.Sprintf("%s failed: %s", e.Object, e.Message) }

// readiness is the state of one object.
type readiness struct {
	ready bool
	// failed is set when the object will not become ready by waiting.
	failed  error
	message string
}

// evaluate decides whether an object is ready: Jobs complete, workloads
// rolled out at their generation, claims bound (kstatus), and the node's
// declared conditions.
func evaluate(u *unstructured.Unstructured, conds []plan.Condition) readiness {
	ref := refOf(u)
	if u.GetDeletionTimestamp() != nil {
		return readiness{message: "being deleted"}
	}
	var own []plan.Condition
	for _, c := range conds {
		if c.Kind == u.GetKind() || (c.Kind == "" && !builtinGroup(ref.Group)) {
			own = append(own, c)
		}
	}
	if len(own) > 0 {
		for _, c := range own {
			got, ok := conditionStatus(u, c.Type)
			if !ok || !strings.EqualFold(got, c.Status) {
				if !ok {
					got = "absent"
				}
				return readiness{message: fmt.Sprintf("condition %s is %s, want %s", c.Type, got, c.Status)}
			}
		}
		return readiness{ready: true}
	}
	if isJob(u) {
		// kstatus counts a started Job as current; a Job is ready when complete.
		if st, ok := conditionStatus(u, "Complete"); ok && st == "True" {
			return readiness{ready: true}
		}
		if st, ok := conditionStatus(u, "Failed"); ok && st == "True" {
			msg, _ := conditionMessage(u, "Failed")
			return readiness{failed: &JobFailedError{Object: ref, Reason: msg}}
		}
		return readiness{message: "job not complete"}
	}
	if admissionPolicy(ref) {
		// The API server type-checks a policy after storing it and writes
		// the result to its status: until then it may change under the
		// next reconcile, and its expressions are not known to compile.
		if !observedGeneration(u) {
			return readiness{message: "policy not type-checked yet"}
		}
		return readiness{ready: true}
	}
	res, err := status.Compute(u)
	if err != nil {
		return readiness{message: err.Error()}
	}
	switch res.Status {
	case status.CurrentStatus:
		return readiness{ready: true}
	case status.FailedStatus:
		return readiness{failed: &ObjectFailedError{Object: ref, Message: res.Message}}
	default:
		return readiness{message: res.Message}
	}
}

// builtinGroup reports whether an API group is Kubernetes' own.
func builtinGroup(g string) bool {
	return g == "" || !strings.Contains(g, ".") || strings.HasSuffix(g, ".k8s.io")
}

func conditionStatus(u *unstructured.Unstructured, typ string) (string, bool) {
	c := findCondition(u, typ)
	if c == nil {
		return "", false
	}
	s, _ := c["status"].(string)
	return s, true
}

func conditionMessage(u *unstructured.Unstructured, typ string) (string, bool) {
	c := findCondition(u, typ)
	if c == nil {
		return "", false
	}
	r, _ := c["reason"].(string)
	m, _ := c["message"].(string)
	return strings.TrimSpace(r + ": " + m), true
}

func findCondition(u *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

// waitAll waits for every object of a node; the first failure cancels the
// other waits.
func (e *reconcileRun) waitAll(ctx context.Context, s *plan.Node, objs []appliedObject) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, o := range objs {
		r := evaluate(o.live, s.Conditions)
		if r.ready || e.bindsOnFirstConsumer(ctx, o) {
			continue
		}
		if r.failed != nil {
			// Stop the waits already started before returning: none may
			// outlive the node.
			cancel()
			wg.Wait()
			return e.detail(ctx, o, r.failed)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.waitObject(ctx, s, o); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// waitObject watches one object until it is ready or failed. For a
// workload it also watches the pods: one that cannot run (it failed,
// crashes in a loop, or its image cannot be pulled) fails the node at once
// instead of at the timeout.
func (e *reconcileRun) waitObject(ctx context.Context, s *plan.Node, o appliedObject) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if sel, ok := workloadSelector(o.live); ok {
		go func() {
			if err := e.watchPods(ctx, o, sel); err != nil {
				cancel(err)
			}
		}()
	}
	last := readiness{message: "not observed yet"}
	var conds []plan.Condition
	if s != nil {
		conds = s.Conditions
	}
	check := func(u *unstructured.Unstructured) (bool, error) {
		if u.GetName() != o.ref.Name {
			return false, nil
		}
		last = evaluate(u, conds)
		if last.failed != nil {
			return false, last.failed
		}
		return last.ready, nil
	}
	_, err := watchtools.UntilWithSync(ctx, nameListWatch(o.ri, o.ref.Name), &unstructured.Unstructured{},
		func(store cache.Store) (bool, error) {
			for _, obj := range store.List() {
				if u, ok := obj.(*unstructured.Unstructured); ok {
					return check(u)
				}
			}
			return false, nil
		},
		func(ev watch.Event) (bool, error) {
			switch ev.Type {
			case watch.Added, watch.Modified:
				if u, ok := ev.Object.(*unstructured.Unstructured); ok {
					return check(u)
				}
			case watch.Deleted:
				last = readiness{message: "deleted while waiting"}
			}
			return false, nil
		})
	if err == nil {
		return nil
	}
	var jf *JobFailedError
	var of *ObjectFailedError
	if errors.As(err, &jf) || errors.As(err, &of) {
		return e.detail(ctx, o, err)
	}
	if cause := context.Cause(ctx); errors.As(cause, &of) {
		return of // a pod of the workload cannot run
	}
	if ctx.Err() != nil {
		return fmt.Errorf("waiting for %s (%s): %w", o.ref, last.message, ctx.Err())
	}
	return fmt.Errorf("waiting for %s: %w", o.ref, err)
}

// workloadSelector returns the pod selector of a Deployment, StatefulSet,
// DaemonSet or ReplicaSet.
func workloadSelector(u *unstructured.Unstructured) (labels.Selector, bool) {
	if u == nil {
		return nil, false
	}
	switch gk := u.GroupVersionKind().GroupKind(); gk.Group + "/" + gk.Kind {
	case "apps/Deployment", "apps/StatefulSet", "apps/DaemonSet", "apps/ReplicaSet":
	default:
		return nil, false
	}
	raw, ok, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	if !ok {
		return nil, false
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, false
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || sel.Empty() {
		return nil, false
	}
	return sel, true
}

// watchPods returns an *ObjectFailedError for the workload o when one of
// its pods cannot run, and nil when ctx ends first.
func (e *reconcileRun) watchPods(ctx context.Context, o appliedObject, sel labels.Selector) error {
	pods := e.c.Kube.CoreV1().Pods(o.ref.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector = sel.String()
			return pods.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = sel.String()
			return pods.Watch(ctx, opts)
		},
	}
	check := func(p *corev1.Pod) error {
		// A pod of an earlier revision may still crash while the fix rolls
		// out: only the workload's current revision counts.
		if podCannotRun(p) != "" && e.currentRevision(ctx, o, p) {
			return &ObjectFailedError{Object: o.ref, Message: "pod " + describePod(p)}
		}
		return nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{},
		func(store cache.Store) (bool, error) {
			for _, obj := range store.List() {
				if p, ok := obj.(*corev1.Pod); ok {
					if err := check(p); err != nil {
						return false, err
					}
				}
			}
			return false, nil
		},
		func(ev watch.Event) (bool, error) {
			if p, ok := ev.Object.(*corev1.Pod); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				return false, check(p)
			}
			return false, nil
		})
	var of *ObjectFailedError
	if errors.As(err, &of) {
		return of
	}
	return nil // the wait ended (ready, timeout, interrupt): the object's watch says why
}

// currentRevision reports whether pod p belongs to the workload's current
// revision: for a Deployment, its newest ReplicaSet; for a StatefulSet, its
// update revision; for a DaemonSet, its generation. Asked only about a pod
// that cannot run, so its lookups cost nothing on the way to ready.
func (e *reconcileRun) currentRevision(ctx context.Context, o appliedObject, p *corev1.Pod) bool {
	live, err := observedLive(ctx, o)
	if err != nil {
		return false
	}
	// A pod of another workload that the selector happens to match is not
	// this one's.
	owned := metav1.IsControlledBy(p, live)
	switch o.ref.Kind {
	case "Deployment":
		rev := live.GetAnnotations()["deployment.kubernetes.io/revision"]
		if rev == "" {
			return false // not rolled out yet: wait and see
		}
		rss, err := e.c.Kube.AppsV1().ReplicaSets(o.ref.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, rs := range rss.Items {
			if metav1.IsControlledBy(&rs, live) && rs.Annotations["deployment.kubernetes.io/revision"] == rev {
				return metav1.IsControlledBy(p, &rs)
			}
		}
		return false
	case "StatefulSet":
		rev, _, _ := unstructured.NestedString(live.Object, "status", "updateRevision")
		return owned && rev != "" && p.Labels["controller-revision-hash"] == rev
	case "DaemonSet":
		return owned && p.Labels["pod-template-generation"] == fmt.Sprint(live.GetGeneration())
	}
	return owned // a ReplicaSet has one revision
}

// observeTimeout bounds the wait for a workload's controller to observe the
// generation just applied.
const observeTimeout = 10 * time.Second

// observedLive returns the live workload once its controller has observed
// its latest generation: until then its revision (a Deployment's annotation,
// a StatefulSet's update revision) is still the one before the apply, and a
// failed pod of that earlier revision would pass for a current one.
func observedLive(ctx context.Context, o appliedObject) (*unstructured.Unstructured, error) {
	var live *unstructured.Unstructured
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, observeTimeout, true,
		func(ctx context.Context) (bool, error) {
			u, err := o.ri.Get(ctx, o.ref.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			live = u
			return observedGeneration(u), nil
		})
	return live, err
}

// observedGeneration tells whether u's controller has seen its current
// generation (status.observedGeneration).
func observedGeneration(u *unstructured.Unstructured) bool {
	og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return found && og >= u.GetGeneration()
}

// stuckReasons are container waiting reasons that waiting will not cure:
// the kubelet has retried and backs off.
var stuckReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "InvalidImageName": true,
}

// podCannotRun says why a pod of a workload will not become ready by
// waiting, or "" when it may. A pod being deleted (an old revision going
// away) says nothing.
func podCannotRun(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	if p.Status.Phase == corev1.PodFailed && p.Status.Reason == "" {
		// A pod a workload runs fails for good only when its program
		// did: an evicted or preempted one (a reason of its own) is
		// replaced by the controller.
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				return "failed"
			}
		}
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil && stuckReasons[w.Reason] {
				return w.Reason
			}
		}
	}
	return ""
}

// nameListWatch lists and watches one object by name.
func nameListWatch(ri dynamic.ResourceInterface, name string) cache.ListerWatcher {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return ri.Watch(ctx, o)
		},
	}
}

// waitGone returns when the named object no longer exists.
func waitGone(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	_, err := watchtools.UntilWithSync(ctx, nameListWatch(ri, name), &unstructured.Unstructured{},
		func(store cache.Store) (bool, error) { return len(store.List()) == 0, nil },
		func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil })
	if err != nil && ctx.Err() != nil {
		// The watch says only "timed out waiting for the condition":
		// return the context's error so an interrupt stays one (exit 130).
		return ctx.Err()
	}
	return err
}

// detail adds a failed Job's pod status and log tail to its error.
func (e *reconcileRun) detail(ctx context.Context, o appliedObject, err error) error {
	var jf *JobFailedError
	if !errors.As(err, &jf) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	sel := "batch.kubernetes.io/job-name=" + o.ref.Name
	if o.live != nil {
		sel = "batch.kubernetes.io/controller-uid=" + string(o.live.GetUID())
	}
	pods, perr := e.c.Kube.CoreV1().Pods(o.ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if perr != nil || len(pods.Items) == 0 {
		if perr != nil {
			jf.LogErr = "listing its pods: " + perr.Error()
		}
		return jf
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	pod := pods.Items[len(pods.Items)-1]
	jf.Pod = describePod(&pod)
	container := ""
	if len(pod.Spec.Containers) > 0 {
		container = pod.Spec.Containers[0].Name
	}
	tail := int64(20)
	logs, lerr := e.c.Kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container, TailLines: &tail}).DoRaw(ctx)
	if lerr != nil {
		// Simulated nodes serve no logs; the pod status says enough then.
		jf.LogErr = lerr.Error()
	} else {
		jf.Log = string(logs)
	}
	return jf
}

// describePod summarises a pod's phase and container terminations.
func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.Name, p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " (%s)", p.Status.Reason)
	}
	if p.Status.Message != "" {
		fmt.Fprintf(&b, ": %s", p.Status.Message)
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		t := cs.State.Terminated
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			fmt.Fprintf(&b, "; container %s waiting: %s", cs.Name, w.Reason)
			if w.Message != "" {
				fmt.Fprintf(&b, ": %s", strings.TrimSpace(w.Message))
			}
			if t == nil {
				t = cs.LastTerminationState.Terminated // why it crashed last
			}
		}
		if t != nil {
			fmt.Fprintf(&b, "; container %s exited %d", cs.Name, t.ExitCode)
			if t.Reason != "" {
				fmt.Fprintf(&b, " (%s)", t.Reason)
			}
			if t.Message != "" {
				fmt.Fprintf(&b, ": %s", strings.TrimSpace(t.Message))
			}
		}
	}
	return b.String()
}

// bindsOnFirstConsumer reports whether o is a pending claim whose storage
// class binds only when a pod uses it (WaitForFirstConsumer): waiting for
// it before its pods exist would never end, so it counts as ready.
func (e *reconcileRun) bindsOnFirstConsumer(ctx context.Context, o appliedObject) bool {
	if o.ref.Group != "" || o.ref.Kind != "PersistentVolumeClaim" {
		return false
	}
	if phase, _, _ := unstructured.NestedString(o.live.Object, "status", "phase"); phase == "Bound" {
		return false
	}
	class, _, _ := unstructured.NestedString(o.live.Object, "spec", "storageClassName")
	classes := e.c.Kube.StorageV1().StorageClasses()
	if class == "" {
		list, err := classes.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, sc := range list.Items {
			if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
				class = sc.Name
			}
		}
	}
	if class == "" {
		return false
	}
	sc, err := classes.Get(ctx, class, metav1.GetOptions{})
	if err != nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return false
	}
	e.log.Info("claim binds when its first pod starts (WaitForFirstConsumer): not waiting for it", "object", o.ref.String(), "storageClass", class)
	return true
}

// admissionPolicy reports whether ref is a Validating- or
// MutatingAdmissionPolicy, whose status the API server writes itself.
func admissionPolicy(ref ObjectRef) bool {
	return ref.Group == "admissionregistration.k8s.io" &&
		(ref.Kind == "ValidatingAdmissionPolicy" || ref.Kind == "MutatingAdmissionPolicy")
}
