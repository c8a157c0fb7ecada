package workspace

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestHelperWaits: the helper's waits follow the pod through a watch: it
// starts running, its clone fails, it is deleted while starting, and an
// old one is deleted and waited for. (The real node's tests run them on
// real pods.)
func TestHelperWaits(t *testing.T) {
	// The fake clientset serves no watch-list stream: list, then watch.
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newPod := func(c *fake.Clientset) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: HelperName, Namespace: "ns", UID: "helper-uid"}}
		created, err := c.CoreV1().Pods("ns").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	later := func(f func()) {
		go func() { time.Sleep(100 * time.Millisecond); f() }()
	}
	setStatus := func(c *fake.Clientset, p *corev1.Pod, st corev1.PodStatus) {
		p = p.DeepCopy()
		p.Status = st
		if _, err := c.CoreV1().Pods("ns").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}

	c := fake.NewClientset()
	p := newPod(c)
	later(func() {
		setStatus(c, p, corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: HelperName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}})
	})
	if got, err := waitRunning(ctx, c, p); err != nil || !running(got) {
		t.Errorf("running pod: %v", err)
	}

	c = fake.NewClientset()
	p = newPod(c)
	later(func() {
		setStatus(c, p, corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{{Name: cloneContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 128}}}}})
	})
	if _, err := waitRunning(ctx, c, p); err == nil || !strings.Contains(err.Error(), "init container clone failed (exit 128)") {
		t.Errorf("failed clone: %v", err)
	}

	c = fake.NewClientset()
	p = newPod(c)
	later(func() { _ = c.CoreV1().Pods("ns").Delete(ctx, p.Name, metav1.DeleteOptions{}) })
	if _, err := waitRunning(ctx, c, p); err == nil || !strings.Contains(err.Error(), "was deleted while starting") {
		t.Errorf("deleted pod: %v", err)
	}

	c = fake.NewClientset()
	p = newPod(c)
	if err := deleteAndWait(ctx, c, p); err != nil {
		t.Errorf("delete and wait: %v", err)
	}
	if _, err := c.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
		t.Error("the old helper is still there")
	}
}
