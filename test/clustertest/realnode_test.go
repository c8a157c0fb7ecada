package clustertest_test

// Smoke tests on real processes: pods of the testbox image (test/images)
// on the shared cluster's real node, where containerd and a kubelet run
// them. Run them with
//
//	go test ./test/clustertest -run RealNode -v

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// A real container starts in about a second; the margin is for a loaded
// machine.
const realTimeout = 90 * time.Second

type realEnv struct {
	*clustertest.Env
	node    *clustertest.RealNode
	testbox string
}

func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	env := clustertest.New(t)
	node := env.RealNode(t)
	return &realEnv{Env: env, node: node, testbox: node.Image(t, "testbox")}
}

// podSpec runs testbox with args on the real node.
func (e *realEnv) podSpec(args ...string) corev1.PodSpec {
	grace := int64(1)
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name:            "main",
			Image:           e.testbox,
			ImagePullPolicy: corev1.PullNever,
			Args:            args,
		}},
	}
	e.node.Place(&spec)
	return spec
}

func (e *realEnv) createPod(t *testing.T, name string, spec corev1.PodSpec) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels(name)}, Spec: spec}
	if _, err := e.Client.CoreV1().Pods(e.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitPod waits until cond holds for the pod and returns it.
func (e *realEnv) waitPod(t *testing.T, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	clustertest.WaitFor(t, realTimeout, "pod "+name+" "+what, func(ctx context.Context) (bool, error) {
		p, err := e.Client.CoreV1().Pods(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	return last
}

func (e *realEnv) firstPod(t *testing.T, selector, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	clustertest.WaitFor(t, realTimeout, what, func(ctx context.Context) (bool, error) {
		pods, err := e.Client.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if cond(&pods.Items[i]) {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

func terminated(p *corev1.Pod) *corev1.ContainerStateTerminated {
	if len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return p.Status.ContainerStatuses[0].State.Terminated
}

func readinessProbe() *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
}

func (e *realEnv) deployment(name string, spec corev1.PodSpec) *appsv1.Deployment {
	replicas := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(name)}, Spec: spec},
		},
	}
}

func TestRealNodeReadinessProbePassesAndFails(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	for name, ready := range map[string]string{"probe-pass": "-ready=true", "probe-fail": "-ready=false"} {
		spec := e.podSpec("serve", ready)
		spec.Containers[0].ReadinessProbe = readinessProbe()
		if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(ctx, e.deployment(name, spec), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d := waitRolledOut(t, e.Client, e.Namespace, "probe-pass")
	if d.Status.ReadyReplicas != 1 {
		t.Fatalf("probe-pass: %d ready replicas, want 1", d.Status.ReadyReplicas)
	}
	// The failing one runs, but its probe really answers 503: the kubelet
	// reports it in an event and keeps the pod not Ready.
	pod := e.firstPod(t, "app=probe-fail", "a running probe-fail pod", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning
	})
	e.waitEvent(t, pod.Name, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
	p := e.waitPod(t, pod.Name, "still not Ready", func(p *corev1.Pod) bool { return true })
	if podReady(p) {
		t.Fatalf("pod %s is Ready although its probe fails", p.Name)
	}
	dep, err := e.Client.AppsV1().Deployments(e.Namespace).Get(ctx, "probe-fail", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Status.AvailableReplicas != 0 {
		t.Fatalf("probe-fail: %d available replicas, want 0", dep.Status.AvailableReplicas)
	}
}

// waitEvent waits for an event of the object with that reason whose
// message holds text.
func (e *realEnv) waitEvent(t *testing.T, object, reason, text string) {
	t.Helper()
	sel := fields.AndSelectors(fields.OneTermEqualSelector("involvedObject.name", object),
		fields.OneTermEqualSelector("reason", reason)).String()
	clustertest.WaitFor(t, realTimeout, fmt.Sprintf("event %s %q of %s", reason, text, object), func(ctx context.Context) (bool, error) {
		evs, err := e.Client.CoreV1().Events(e.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, text) {
				return true, nil
			}
		}
		return false, nil
	})
}

func (e *realEnv) job(name string, args ...string) *batchv1.Job {
	backoff := int32(0)
	spec := e.podSpec(args...)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels(name)}, Spec: spec},
		},
	}
}

func TestRealNodeJobExitCodes(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	jobs := e.Client.BatchV1().Jobs(e.Namespace)
	for _, j := range []*batchv1.Job{
		e.job("exit-zero", "exit", "0", "migrated 3 tables"),
		e.job("exit-three", "exit", "3", "migration failed: relation users already exists"),
	} {
		if _, err := jobs.Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]batchv1.JobConditionType{"exit-zero": batchv1.JobComplete, "exit-three": batchv1.JobFailed} {
		clustertest.WaitFor(t, realTimeout, "job "+name+" "+string(want), func(ctx context.Context) (bool, error) {
			j, err := jobs.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range j.Status.Conditions {
				if c.Type == want && c.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
	}
	for name, want := range map[string]struct {
		code int32
		msg  string
	}{
		"exit-zero":  {0, "migrated 3 tables"},
		"exit-three": {3, "migration failed: relation users already exists"},
	} {
		p := e.firstPod(t, "app="+name, "the terminated pod of job "+name, func(p *corev1.Pod) bool { return terminated(p) != nil })
		term := terminated(p)
		if term.ExitCode != want.code || strings.TrimSpace(term.Message) != want.msg {
			t.Errorf("job %s: exit code %d, message %q; want %d, %q", name, term.ExitCode, term.Message, want.code, want.msg)
		}
		logs, err := e.Kubectl(ctx, "-n", e.Namespace, "logs", p.Name)
		if err != nil || strings.TrimSpace(logs) != want.msg {
			t.Errorf("job %s: kubectl logs = %q, %v; want %q", name, logs, err, want.msg)
		}
	}
}

func TestRealNodeCrashLoopFromRealRestarts(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	spec := e.podSpec("exit", "1", "cannot connect to postgres: connection refused")
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(t.Context(), e.deployment("crasher", spec), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.firstPod(t, "app=crasher", "a crasher pod restarted and in CrashLoopBackOff", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		s := p.Status.ContainerStatuses[0]
		return s.RestartCount >= 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff"
	})
	last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if last == nil || last.ExitCode != 1 || !strings.Contains(last.Message, "connection refused") {
		t.Fatalf("last termination of %s: %+v; want exit code 1 and the container's message", p.Name, last)
	}
}

func TestRealNodeLogsExecPortForward(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	e.createPod(t, "talker", e.podSpec("serve", "-text", "hello from a real container"))
	e.waitPod(t, "talker", "Ready", podReady)
	logs, err := e.Kubectl(ctx, "-n", e.Namespace, "logs", "talker")
	if err != nil || !strings.Contains(logs, "serving on") {
		t.Fatalf("kubectl logs talker = %q, %v; want the server's first line", logs, err)
	}
	out, err := e.Kubectl(ctx, "-n", e.Namespace, "exec", "talker", "--", "/testbox", "get", "-tries", "3", "http://127.0.0.1:8080/")
	if err != nil || strings.TrimSpace(out) != "hello from a real container" {
		t.Fatalf("kubectl exec talker -- testbox get = %q, %v", out, err)
	}
	// An exec's exit code comes back.
	_, err = e.Kubectl(ctx, "-n", e.Namespace, "exec", "talker", "--", "/testbox", "exit", "7")
	if err == nil || !strings.Contains(err.Error(), "exit code 7") {
		t.Fatalf("kubectl exec ... exit 7: %v; want exit code 7", err)
	}
	if got := e.portForwardGet(t, "talker", 8080); got != "hello from a real container" {
		t.Fatalf("through kubectl port-forward: %q", got)
	}
}

// portForwardGet runs kubectl port-forward to the pod's port on a free
// loopback port and returns the body of GET / through it.
func (e *realEnv) portForwardGet(t *testing.T, pod string, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), realTimeout)
	defer cancel()
	cmd, err := e.KubectlCommand(ctx, "-n", e.Namespace, "port-forward", "--address", "127.0.0.1", "pod/"+pod, fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// "Forwarding from 127.0.0.1:PORT -> 8080"
	line, err := bufio.NewReader(stdout).ReadString('\n')
	local, ok := strings.CutPrefix(strings.Fields(line + " x x")[2], "127.0.0.1:")
	if err != nil || !ok {
		t.Fatalf("kubectl port-forward said %q (%v)", line, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+local+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET through port-forward: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(body))
}

func TestRealNodeMemoryLimitKills(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	spec := e.podSpec("alloc", "256")
	spec.RestartPolicy = corev1.RestartPolicyNever
	limit := resource.MustParse("48Mi")
	spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: limit},
	}
	e.createPod(t, "hog", spec)
	p := e.waitPod(t, "hog", "terminated", func(p *corev1.Pod) bool { return terminated(p) != nil })
	if term := terminated(p); term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Fatalf("hog ended with %s (exit code %d); want OOMKilled (137)", term.Reason, term.ExitCode)
	}
}

func TestRealNodeServiceByName(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	spec := e.podSpec("serve", "-text", "answer from the backend")
	spec.Containers[0].ReadinessProbe = readinessProbe()
	if _, err := e.Client.AppsV1().Deployments(e.Namespace).Create(ctx, e.deployment("backend", spec), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: corev1.ServiceSpec{
			Selector: labels("backend"),
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := e.Client.CoreV1().Services(e.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, e.Client, e.Namespace, "backend")
	// The short name (the pod's search path) and the full one, through
	// CoreDNS and kube-proxy.
	for name, url := range map[string]string{
		"client-short": "http://backend/",
		"client-fqdn":  "http://backend." + e.Namespace + ".svc.cluster.local/",
	} {
		spec := e.podSpec("get", "-tries", "30", url)
		spec.RestartPolicy = corev1.RestartPolicyNever
		e.createPod(t, name, spec)
	}
	for _, name := range []string{"client-short", "client-fqdn"} {
		p := e.waitPod(t, name, "finished", func(p *corev1.Pod) bool { return terminated(p) != nil })
		logs, _ := e.Kubectl(ctx, "-n", e.Namespace, "logs", name)
		if term := terminated(p); term.ExitCode != 0 || strings.TrimSpace(logs) != "answer from the backend" {
			t.Errorf("%s: exit code %d, output %q; want 0 and the backend's answer", name, term.ExitCode, logs)
		}
	}
}

func TestRealNodeClaimSharedWithFSGroup(t *testing.T) {
	t.Parallel()
	e := newRealEnv(t)
	ctx := t.Context()
	class := clustertest.RealNodeStorageClass
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// As the non-prod workspace declares it: uid 1000, gid 1000, fsGroup 1000.
	uid, gid := int64(1000), int64(1000)
	for _, name := range []string{"writer-a", "writer-b"} {
		spec := e.podSpec("sleep")
		spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid, FSGroup: &gid}
		spec.Volumes = []corev1.Volume{{Name: "ws", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "workspace"},
		}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "ws", MountPath: "/workspace"}}
		e.createPod(t, name, spec)
	}
	for _, name := range []string{"writer-a", "writer-b"} {
		e.waitPod(t, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	exec := func(pod string, args ...string) string {
		t.Helper()
		out, err := e.Kubectl(ctx, append([]string{"-n", e.Namespace, "exec", pod, "--", "/testbox"}, args...)...)
		if err != nil {
			t.Fatalf("exec in %s: %v", pod, err)
		}
		return strings.TrimSpace(out)
	}
	exec("writer-a", "write", "/workspace/from-a", "written by a")
	exec("writer-b", "write", "/workspace/from-b", "written by b")
	if got := exec("writer-b", "cat", "/workspace/from-a"); got != "written by a" {
		t.Errorf("writer-b reads from-a as %q", got)
	}
	// The containers' umask is 022.
	want := "/workspace/from-a uid=1000 gid=1000 mode=-rw-r--r--\n/workspace/from-b uid=1000 gid=1000 mode=-rw-r--r--"
	for _, pod := range []string{"writer-a", "writer-b"} {
		if got := exec(pod, "stat", "/workspace/from-a", "/workspace/from-b"); got != want {
			t.Errorf("%s sees:\n%s\nwant:\n%s", pod, got, want)
		}
	}
	// The volume root belongs to the fsGroup, so the pods could write at all.
	if got := exec("writer-a", "stat", "/workspace"); !strings.Contains(got, "gid=1000") {
		t.Errorf("volume root: %s; want group 1000 (the fsGroup)", got)
	}
	if got := exec("writer-a", "id"); got != "uid=1000 gid=1000 groups=1000" {
		t.Errorf("writer-a runs as %s", got)
	}
}

// BenchmarkRealNodePodStartToReady: from creating a pod of the testbox
// image (imported already) with a readiness probe to the pod being Ready,
// on the real node. Results are in docs/benchmarks.md.
func BenchmarkRealNodePodStartToReady(b *testing.B) {
	env := clustertest.New(b)
	node := env.RealNode(b)
	e := &realEnv{Env: env, node: node, testbox: node.Image(b, "testbox")}
	pods := e.Client.CoreV1().Pods(e.Namespace)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("start-%d", i)
		spec := e.podSpec("serve")
		spec.Containers[0].ReadinessProbe = readinessProbe()
		spec.Containers[0].ReadinessProbe.PeriodSeconds = 1
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
		if _, err := pods.Create(b.Context(), pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		clustertest.WaitFor(b, realTimeout, "pod "+name+" Ready", func(ctx context.Context) (bool, error) {
			p, err := pods.Get(ctx, name, metav1.GetOptions{})
			return err == nil && podReady(p), err
		})
		b.StopTimer()
		if err := pods.Delete(b.Context(), name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
