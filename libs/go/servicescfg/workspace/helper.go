package workspace

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

const (
	// HelperName is the name of the helper pod in the environment's
	// namespace, and of its container.
	HelperName = "workspace-helper"
	// DefaultHelperImage has the POSIX shell, tar, xargs, rm, rmdir and mv
	// the helper runs.
	DefaultHelperImage = "docker.io/library/busybox:1.37"
	// ComponentLabel marks the engine's own pods.
	ComponentLabel = "codex-k8s.dev/component"

	helperTimeout = 2 * time.Minute
)

// ErrSlotMissing: the namespace of the environment (a slot that was never
// reconciled, or was deleted) does not exist.
var ErrSlotMissing = errors.New("namespace does not exist")

// helperCommand keeps the helper running and ends it at once on SIGTERM
// (a shell as PID 1 ignores the signal otherwise).
var helperCommand = []string{"sh", "-c", `trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done`}

// HelperPod is the engine's helper pod for a workspace: the workspace
// owner's uid, gid and fsGroup, the claim mounted at its path, pinned to
// node (when not empty) and tolerating every taint there, since a volume
// bound to a node can only be used on it.
func HelperPod(s Spec, image, node string) *corev1.Pod {
	grace := int64(1)
	m := PodMount(s)
	spec := corev1.PodSpec{
		NodeName:                      node,
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: &grace,
		AutomountServiceAccountToken:  new(false),
		Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Containers: []corev1.Container{{
			Name:            HelperName,
			Image:           image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         helperCommand,
			WorkingDir:      s.MountPath,
		}},
	}
	m.Apply(&spec)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      HelperName,
			Namespace: s.Namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       HelperName,
				"app.kubernetes.io/managed-by": "codex-bootstrap",
				ComponentLabel:                 HelperName,
			},
		},
		Spec: spec,
	}
}

// EnsureHelper returns the running helper pod of a workspace, creating it
// on the claim's node (and re-creating one that ended or runs another
// image) and waiting until it runs.
func EnsureHelper(ctx context.Context, c kubernetes.Interface, s Spec, image string) (*corev1.Pod, error) {
	if _, err := c.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("namespace %s: %w: reconcile the environment first", s.Namespace, ErrSlotMissing)
	} else if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", s.Namespace, err)
	}
	reuse := func(p *corev1.Pod) bool {
		return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded &&
			p.Spec.Containers[0].Image == image
	}
	build := func() (*corev1.Pod, error) {
		node, err := ClaimNode(ctx, c, s.Namespace, s.ClaimName)
		if err != nil {
			return nil, err
		}
		return HelperPod(s, image, node), nil
	}
	pod, _, err := replaceHelper(ctx, c, s.Namespace, reuse, build)
	if err != nil {
		return nil, err
	}
	return waitRunning(ctx, c, pod)
}

// replaceHelper keeps the helper pod of namespace ns when reuse accepts it,
// else deletes it (and waits until it is gone) and creates the one build
// makes; kept tells which. It does not wait for the pod to run.
func replaceHelper(ctx context.Context, c kubernetes.Interface, ns string, reuse func(*corev1.Pod) bool, build func() (*corev1.Pod, error)) (pod *corev1.Pod, kept bool, err error) {
	pods := c.CoreV1().Pods(ns)
	old, err := pods.Get(ctx, HelperName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, false, fmt.Errorf("reading the workspace helper: %w", err)
	case reuse(old):
		return old, true, nil
	default:
		if err := deleteAndWait(ctx, c, old); err != nil {
			return nil, false, err
		}
	}
	want, err := build()
	if err != nil {
		return nil, false, err
	}
	pod, err = pods.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // another sync created it meanwhile
		pod, err = pods.Get(ctx, HelperName, metav1.GetOptions{})
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating the workspace helper in %s: %w", ns, err)
	}
	return pod, false, nil
}

// ClaimNode waits until a workspace claim's volume is placed and returns
// its node: the node of a pod that mounts it, else the node the scheduler
// chose for it, else the node its volume is pinned to; "" for a bound
// volume of no particular node. A claim that does not exist yet or waits
// for its first consumer (a reconcile in progress) is waited for: the
// helper must not become that consumer and pin the volume to a node the
// services cannot run on.
func ClaimNode(ctx context.Context, c kubernetes.Interface, ns, claim string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	why := ""
	for {
		node, placed, err := claimNode(ctx, c, ns, claim)
		switch {
		case err != nil && !errors.Is(err, errNoClaim):
			return "", err
		case err != nil:
			why = err.Error()
		case placed:
			return node, nil
		default:
			why = fmt.Sprintf("workspace claim %s/%s waits for its first pod", ns, claim)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s after %s: reconcile the environment (its services mount the claim): %w", why, helperTimeout, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var errNoClaim = errors.New("does not exist yet")

// claimNode is one look at where a claim is; placed is false while it
// waits for a first consumer.
func claimNode(ctx context.Context, c kubernetes.Interface, ns, claim string) (node string, placed bool, err error) {
	pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, fmt.Errorf("workspace claim %s/%s %w", ns, claim, errNoClaim)
	}
	if err != nil {
		return "", false, fmt.Errorf("reading workspace claim %s/%s: %w", ns, claim, err)
	}
	list, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", false, fmt.Errorf("listing pods of %s: %w", ns, err)
	}
	for _, p := range list.Items {
		if p.Spec.NodeName == "" || p.Name == HelperName {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				return p.Spec.NodeName, true, nil
			}
		}
	}
	if n := pvc.Annotations["volume.kubernetes.io/selected-node"]; n != "" {
		return n, true, nil
	}
	if pvc.Spec.VolumeName == "" {
		return "", false, nil
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil || pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return "", true, nil //nolint:nilerr // a volume of no particular node
	}
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0], true, nil
			}
		}
	}
	return "", true, nil
}

// waitRunning watches the pod until its container runs.
func waitRunning(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	last := pod
	// started says whether p runs, and fails on a pod that never will.
	started := func(p *corev1.Pod) (bool, error) {
		last = p
		if running(p) {
			return true, nil
		}
		if msg := initFailed(p); msg != "" {
			return false, fmt.Errorf("workspace helper %s/%s: %s", p.Namespace, p.Name, msg)
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("workspace helper %s/%s ended (%s): %s", p.Namespace, p.Name, p.Status.Phase, p.Status.Message)
		}
		return false, nil
	}
	gone := fmt.Errorf("workspace helper %s/%s was deleted while starting", pod.Namespace, pod.Name)
	_, err := watchtools.UntilWithSync(ctx, podWatch(c, pod), &corev1.Pod{},
		func(store cache.Store) (bool, error) {
			items := store.List()
			if len(items) == 0 {
				return false, gone
			}
			return started(items[0].(*corev1.Pod))
		},
		func(ev watch.Event) (bool, error) {
			p, ok := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Deleted:
				return false, gone
			case !ok:
				return false, nil
			}
			return started(p)
		})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("workspace helper %s/%s not running after %s (%s): %w", pod.Namespace, pod.Name, helperTimeout, waiting(last), ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	return last, nil
}

// podWatch lists and watches the one pod named as pod.
func podWatch(c kubernetes.Interface, pod *corev1.Pod) cache.ListerWatcher {
	pods := c.CoreV1().Pods(pod.Namespace)
	sel := fields.OneTermEqualSelector("metadata.name", pod.Name).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
}

// initFailed says which init container of the pod ended in failure, ""
// while none did.
func initFailed(p *corev1.Pod) string {
	for _, cs := range p.Status.InitContainerStatuses {
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && t.ExitCode != 0 {
				return fmt.Sprintf("init container %s failed (exit %d)", cs.Name, t.ExitCode)
			}
		}
	}
	return ""
}

func running(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == HelperName && cs.State.Running != nil {
			return p.DeletionTimestamp == nil
		}
	}
	return false
}

// waiting says why a container has not started, for a timeout message.
func waiting(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return w.Reason + ": " + w.Message
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			return c.Message
		}
	}
	return "phase " + string(p.Status.Phase)
}

func deleteAndWait(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod) error {
	err := c.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting the old workspace helper: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	_, err = watchtools.UntilWithSync(ctx, podWatch(c, pod), &corev1.Pod{},
		func(store cache.Store) (bool, error) { return len(store.List()) == 0, nil },
		func(ev watch.Event) (bool, error) { return ev.Type == watch.Deleted, nil })
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err() // the watch says only "timed out waiting for the condition"
		}
		return fmt.Errorf("the old workspace helper %s/%s is still there: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
