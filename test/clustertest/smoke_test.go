package clustertest_test

// Smoke tests: the cluster of test/cluster/cluster.sh behaves like a real
// one (controllers, scheduler, admission, server-side apply, CRDs, volume
// provisioning, restarts). Run them with
//
//	go test ./test/... -run Smoke -v

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"

	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

const rolloutTimeout = 90 * time.Second

func labels(app string) map[string]string { return map[string]string{"app": app} }

func podTemplate(app, image string, annotations map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(app), Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  app,
			Image: image,
		}}},
	}
}

func deployment(name, image string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels(name)},
			Template: podTemplate(name, image, nil),
		},
	}
}

// waitRolledOut waits until the Deployment's current generation is fully
// rolled out and Available, as `kubectl rollout status` decides it.
func waitRolledOut(t *testing.T, c kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	var last *appsv1.Deployment
	clustertest.WaitFor(t, rolloutTimeout, "deployment "+name+" rolled out and Available", func(ctx context.Context) (bool, error) {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = d
		want := *d.Spec.Replicas
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
			s.Replicas == want && s.AvailableReplicas == want &&
			deploymentCondition(d, appsv1.DeploymentAvailable) == corev1.ConditionTrue, nil
	})
	return last
}

func deploymentCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) corev1.ConditionStatus {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return corev1.ConditionUnknown
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestSmokeDeploymentRollsOutThroughReplicaSets(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	deps := env.Client.AppsV1().Deployments(env.Namespace)

	if _, err := deps.Create(ctx, deployment("web", "registry.invalid/web:v1", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, env.Client, env.Namespace, "web")

	// A new template: a second ReplicaSet takes over, the first is scaled to 0.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "registry.invalid/web:v2"
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d := waitRolledOut(t, env.Client, env.Namespace, "web")

	rss, err := env.Client.AppsV1().ReplicaSets(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Fatalf("want 2 ReplicaSets after an image change, got %d", len(rss.Items))
	}
	for _, rs := range rss.Items {
		owner := metav1.GetControllerOf(&rs)
		if owner == nil || owner.Kind != "Deployment" || owner.UID != d.UID {
			t.Errorf("ReplicaSet %s: controller %v, want Deployment web", rs.Name, owner)
		}
		image := rs.Spec.Template.Spec.Containers[0].Image
		switch want := map[string]int32{"registry.invalid/web:v1": 0, "registry.invalid/web:v2": 3}[image]; {
		case *rs.Spec.Replicas != want || rs.Status.ReadyReplicas != want:
			t.Errorf("ReplicaSet %s (%s): %d replicas, %d ready; want %d", rs.Name, image, *rs.Spec.Replicas, rs.Status.ReadyReplicas, want)
		}
	}

	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var ready int
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) && p.Spec.NodeName != "" && p.Status.HostIP == "127.0.0.1" {
			ready++
		}
	}
	if ready != 3 {
		t.Errorf("want 3 Ready pods scheduled on nodes at 127.0.0.1, got %d of %d", ready, len(pods.Items))
	}
}

// migrationJob is a Job "migrate" of one pod, never retried, whose pod
// template carries the given annotations.
func migrationJob(annotations map[string]string) *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template:     podTemplate("migrate", "registry.invalid/migrate:v1", annotations),
		},
	}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	return job
}

func TestSmokeJobCompletes(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	created, err := env.Client.BatchV1().Jobs(env.Namespace).Create(ctx, migrationJob(nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Watch the Job (from the version we created) until it is Complete.
	wctx, cancel := context.WithTimeout(ctx, rolloutTimeout)
	defer cancel()
	ev, err := watchtools.Until(wctx, created.ResourceVersion,
		&jobWatcher{wctx, env.Client, env.Namespace, "migrate"},
		func(ev watch.Event) (bool, error) {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok {
				return false, fmt.Errorf("unexpected watch event %s %T", ev.Type, ev.Object)
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					return false, fmt.Errorf("job failed: %s", c.Message)
				}
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		t.Fatalf("waiting for job migrate to complete: %v", err)
	}
	if j := ev.Object.(*batchv1.Job); j.Status.Succeeded != 1 {
		t.Errorf("job status: %d succeeded, want 1", j.Status.Succeeded)
	}

	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=migrate"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodSucceeded {
		t.Errorf("want one Succeeded pod, got %d: %v", len(pods.Items), podPhases(pods.Items))
	}
}

// jobWatcher watches one Job by name.
type jobWatcher struct {
	ctx      context.Context
	c        kubernetes.Interface
	ns, name string
}

func (w *jobWatcher) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.name).String()
	return w.c.BatchV1().Jobs(w.ns).Watch(w.ctx, opts)
}

func podPhases(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+"="+string(p.Status.Phase))
	}
	return out
}

func TestSmokeStatefulSetClaimBinds(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  labels("db"),
			Ports:     []corev1.ServicePort{{Name: "pg", Port: 5432}},
		},
	}
	if _, err := env.Client.CoreV1().Services(env.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := int32(2)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &replicas,
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels("db")},
			Template:    podTemplate("db", "registry.invalid/postgres:17", nil),
			// No storageClassName: the default StorageClass is filled in.
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceStorage: resource.MustParse("1Gi"),
					}},
				},
			}},
		},
	}
	sts.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql"}}
	if _, err := env.Client.AppsV1().StatefulSets(env.Namespace).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, rolloutTimeout, "statefulset db with 2 ready replicas", func(ctx context.Context) (bool, error) {
		s, err := env.Client.AppsV1().StatefulSets(env.Namespace).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == replicas &&
			s.Status.CurrentReplicas == replicas, nil
	})

	for _, name := range []string{"data-db-0", "data-db-1"} {
		pvc, err := env.Client.CoreV1().PersistentVolumeClaims(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			t.Errorf("claim %s is %s, want Bound", name, pvc.Status.Phase)
			continue
		}
		if sc := pvc.Spec.StorageClassName; sc == nil || *sc != "standard" {
			t.Errorf("claim %s: storage class %v, want the default, standard", name, sc)
		}
		pv, err := env.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
			t.Errorf("volume %s is not bound to claim %s", pv.Name, name)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			t.Errorf("volume %s: reclaim policy %s, want Delete (no pool to leak)", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
		}
	}
}

func TestSmokeServerSideApply(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	cms := env.Client.CoreV1().ConfigMaps(env.Namespace)
	apply := func(manager string, force bool, data map[string]string) (*corev1.ConfigMap, error) {
		cm := corev1ac.ConfigMap("settings", env.Namespace).WithData(data)
		return cms.Apply(ctx, cm, metav1.ApplyOptions{FieldManager: manager, Force: force})
	}

	if _, err := apply("alice", false, map[string]string{"color": "blue", "size": "m"}); err != nil {
		t.Fatal(err)
	}
	// Bob sets a field Alice manages: the server reports a conflict naming her.
	_, err := apply("bob", false, map[string]string{"color": "red"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply by bob over alice's field: got %v, want a conflict", err)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !hasConflictCause(status.Status(), "alice", ".data.color") {
		t.Errorf("conflict does not name manager alice and field .data.color: %v", err)
	}

	// Forced, Bob takes the field over; Alice keeps the other one.
	cm, err := apply("bob", true, map[string]string{"color": "red"})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["color"] != "red" || cm.Data["size"] != "m" {
		t.Errorf("after bob's forced apply: data %v, want color=red size=m", cm.Data)
	}
	owners := fieldOwners(cm)
	if owners["bob"] != "f:color" || owners["alice"] != "f:size" {
		t.Errorf("field owners %v, want bob: f:color, alice: f:size", owners)
	}

	// Alice applies without size: a field no one else manages is removed.
	cm, err = apply("alice", false, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["size"]; ok || cm.Data["color"] != "red" {
		t.Errorf("after alice dropped size: data %v, want only color=red", cm.Data)
	}
}

func hasConflictCause(s metav1.Status, manager, field string) bool {
	if s.Details == nil {
		return false
	}
	for _, c := range s.Details.Causes {
		if c.Type == metav1.CauseTypeFieldManagerConflict && c.Field == field && strings.Contains(c.Message, manager) {
			return true
		}
	}
	return false
}

// fieldOwners: manager -> the data keys it manages by apply, e.g. "f:color".
func fieldOwners(cm *corev1.ConfigMap) map[string]string {
	out := map[string]string{}
	for _, mf := range cm.ManagedFields {
		if mf.Operation != metav1.ManagedFieldsOperationApply || mf.FieldsV1 == nil {
			continue
		}
		var keys []string
		for _, k := range []string{"f:color", "f:size"} {
			if strings.Contains(string(mf.FieldsV1.Raw), `"`+k+`"`) {
				keys = append(keys, k)
			}
		}
		out[mf.Manager] = strings.Join(keys, ",")
	}
	return out
}

func TestSmokeNamespaceDeletionFinishes(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	ns := env.NewNamespace(t) // a second one, deleted here
	if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, deployment("api", "registry.invalid/api:v1", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "config"}, Data: map[string]string{"k": "v"}}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, env.Client, ns, "api")

	if err := env.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The namespace controller empties it (pods go through kwok's delete
	// stage), then removes the kubernetes finalizer.
	clustertest.WaitFor(t, rolloutTimeout, "namespace "+ns+" to be gone", func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func TestSmokeCustomResourceDefinition(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	// CRDs are cluster-wide: a group of this run's own.
	group := env.Namespace + ".smoke.codex-k8s.dev"
	crdName := "widgets." + group
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": crdName},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":       "object",
						"required":   []any{"size"},
						"properties": map[string]any{"size": map[string]any{"type": "integer", "minimum": int64(1)}},
					}},
				}},
			}},
		},
	}}
	if _, err := env.Dynamic.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := env.Dynamic.Resource(crdGVR).Delete(ctx, crdName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting CRD %s: %v", crdName, err)
		}
	})
	clustertest.WaitFor(t, 30*time.Second, "CRD "+crdName+" Established", func(ctx context.Context) (bool, error) {
		u, err := env.Dynamic.Resource(crdGVR).Get(ctx, crdName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})

	widgets := env.Dynamic.Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}).Namespace(env.Namespace)
	widget := func(name string, size int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": group + "/v1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": name},
			"spec":       map[string]any{"size": size},
		}}
	}
	if _, err := widgets.Create(ctx, widget("good", 3), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a valid Widget: %v", err)
	}
	// The schema is enforced by the API server.
	if _, err := widgets.Create(ctx, widget("bad", 0), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("creating a Widget with size 0: got %v, want Invalid", err)
	}
	list, err := widgets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].GetName() != "good" {
		t.Errorf("widgets: got %d items, want only good", len(list.Items))
	}
	// And it is in discovery, as clients such as kubectl find it.
	res, err := env.Client.Discovery().ServerResourcesForGroupVersion(group + "/v1")
	if err != nil || len(res.APIResources) == 0 || res.APIResources[0].Kind != "Widget" {
		t.Errorf("discovery of %s/v1: %v, %v", group, res, err)
	}
}

func TestSmokeReadyDelayAnnotation(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	const delay = 3 * time.Second
	pod := func(name string, annotations map[string]string) *corev1.Pod {
		tpl := podTemplate(name, "registry.invalid/app:v1", annotations)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Spec: tpl.Spec}
	}
	start := time.Now()
	for _, p := range []*corev1.Pod{
		pod("slow", map[string]string{"codex-k8s.dev/ready-delay": delay.String()}),
		pod("fast", nil),
	} {
		if _, err := env.Client.CoreV1().Pods(env.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	readyAt := map[string]time.Duration{}
	clustertest.WaitFor(t, 30*time.Second, "pods slow and fast Ready", func(ctx context.Context) (bool, error) {
		pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if _, seen := readyAt[p.Name]; !seen && podReady(&p) {
				readyAt[p.Name] = time.Since(start)
			}
		}
		return len(readyAt) == 2, nil
	})
	if readyAt["slow"] < delay {
		t.Errorf("annotated pod Ready after %s, want at least %s", readyAt["slow"], delay)
	}
	if readyAt["fast"] >= readyAt["slow"] {
		t.Errorf("pod without the annotation Ready after %s, not before the annotated one (%s)", readyAt["fast"], readyAt["slow"])
	}
	t.Logf("Ready after: slow %s, fast %s", readyAt["slow"].Round(time.Millisecond), readyAt["fast"].Round(time.Millisecond))
}

// TestSmokeFailAnnotation: the pod-fail stage. A Job whose pod template
// is annotated codex-k8s.dev/fail ends Failed; its pod is Failed with the
// container terminated, exit code 1 and the annotated message.
func TestSmokeFailAnnotation(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	ctx := t.Context()
	const message = "relation \"users\" already exists"
	job := migrationJob(map[string]string{
		"codex-k8s.dev/fail":         "true",
		"codex-k8s.dev/fail-message": message,
	})
	if _, err := env.Client.BatchV1().Jobs(env.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, rolloutTimeout, "job migrate Failed", func(ctx context.Context) (bool, error) {
		j, err := env.Client.BatchV1().Jobs(env.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return false, errors.New("job completed, want it to fail")
			}
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})

	pods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=migrate"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("want one pod (backoffLimit 0), got %d: %v", len(pods.Items), podPhases(pods.Items))
	}
	p := pods.Items[0]
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("pod %s is %s, want Failed", p.Name, p.Status.Phase)
	}
	if podReady(&p) {
		t.Errorf("pod %s is Ready, want not Ready", p.Name)
	}
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("pod %s: container statuses %+v, want one terminated container", p.Name, p.Status.ContainerStatuses)
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term.ExitCode != 1 || term.Reason != "Error" || term.Message != message {
		t.Errorf("container terminated with exit code %d, reason %q, message %q; want 1, Error, %q", term.ExitCode, term.Reason, term.Message, message)
	}
}

func TestSmokeAPIServerRestartKeepsData(t *testing.T) {
	t.Parallel()
	c := clustertest.Private(t)
	ns := c.NewNamespace(t)
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}, Data: map[string]string{"k": "v"}}
	before, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deployment("web", "registry.invalid/web:v1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRolledOut(t, c.Client, ns, "web")

	c.Restart(t, "kube-apiserver")

	after, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "before", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading back after the restart: %v", err)
	}
	if after.UID != before.UID || after.Data["k"] != "v" {
		t.Errorf("after the restart: uid %s data %v; want uid %s data k=v", after.UID, after.Data, before.UID)
	}
	// The controllers reconnected: a scale-up made now is carried out.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := c.Client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		s.Spec.Replicas = 3
		_, err = c.Client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := waitRolledOut(t, c.Client, ns, "web"); d.Status.AvailableReplicas != 3 {
		t.Errorf("after scaling to 3: %d available", d.Status.AvailableReplicas)
	}
}

// TestSmokeDownWithLocalVolumes: `down` of a cluster whose last volume is a
// local one (no hostPath, as the real node's provisioner makes) stops the
// cluster and exits 0. It once ended silently with 1 under set -e and left
// the cluster running. The private cluster's cleanup runs that `down` and
// fails the test when it fails.
func TestSmokeDownWithLocalVolumes(t *testing.T) {
	t.Parallel()
	c := clustertest.Private(t)
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "local-last"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: "local-only",
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: "/var/lib/codex-test-nonexistent"},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"nowhere"},
				}}}},
			}},
		},
	}
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
