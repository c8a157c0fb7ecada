package apply_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
)

// stackYAML is a small stack: nodes is the YAML of spec.services.
func stackYAML(nodes string, extra string) string {
	return `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: behaviour}
spec:
  project: beh
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    slot: {runtime: non-prod, slots: true, namespaceTemplate: "{{ .Project }}-s-{{ .Slot }}"}
` + extra + `
  services:
` + nodes
}

func deploymentYAML(name, delay string) string {
	ann := ""
	if delay != "" {
		ann = fmt.Sprintf("\n      annotations: {codex-k8s.dev/ready-delay: %q}", delay)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s}%[2]s
    spec:
      containers: [{name: main, image: "example.test/%[1]s:1"}]
`, name, ann)
}

func configMapYAML(name string, data map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata:\n", name)
	for k, v := range data {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	return b.String()
}

// TestReconcileFailedJobStopsDependents: a migration Job fails (its pod
// carries codex-k8s.dev/fail, so the test cluster's pod-fail stage ends it
// Failed with exit code 3 and a message; backoffLimit 0 makes the Job
// Failed); the node fails at once, long before its timeout, with the Job's
// reason and its pod's name, phase, exit code and message; its dependents
// are skipped and an independent branch finishes.
func TestReconcileFailedJobStopsDependents(t *testing.T) {
	f := newFixture(t, `
    - {name: db, group: stateful, manifests: [db.yaml]}
    - {name: migrate, group: migrations, dependsOn: [db], manifests: [migrate.yaml]}
    - {name: side, group: migrations, manifests: [side.yaml]}
    - {name: api, group: internal, dependsOn: [migrate], manifests: [api.yaml]}
    - {name: web, group: frontend, dependsOn: [api], manifests: [web.yaml]}
`, map[string]string{
		"db.yaml":   deploymentYAML("db", ""),
		"side.yaml": deploymentYAML("side", ""),
		"api.yaml":  deploymentYAML("api", ""),
		"web.yaml":  deploymentYAML("web", ""),
		"migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        codex-k8s.dev/fail: "true"
        codex-k8s.dev/exit-code: "3"
        codex-k8s.dev/fail-message: 'relation "users" already exists'
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "example.test/migrate:1"}]
`,
	})
	p, values := f.plan()
	res, events, err := run(t, context.Background(), f.cfg, p, apply.Options{Values: values, Timeout: 2 * time.Minute})
	var nerr *apply.NodesError
	if !errors.As(err, &nerr) {
		t.Fatalf("reconcile error %v, want a NodesError", err)
	}
	var jf *apply.JobFailedError
	if !errors.As(err, &jf) {
		t.Fatalf("error %v does not carry a JobFailedError", err)
	}
	if !strings.Contains(jf.Reason, "BackoffLimitExceeded") {
		t.Errorf("job failure reason %q, want BackoffLimitExceeded", jf.Reason)
	}
	// The pod as the error describes it: name, phase, exit code, message.
	const podWant = `: Failed; container migrate exited 3 (Error): relation "users" already exists`
	if !strings.HasPrefix(jf.Pod, "migrate-") || !strings.HasSuffix(jf.Pod, podWant) {
		t.Errorf("job failure pod %q, want migrate-<suffix>%s", jf.Pod, podWant)
	}
	for _, n := range res.Nodes {
		if n.Name == "migrate" && (n.Err == nil || !strings.Contains(n.Err.Error(), "pod "+jf.Pod)) {
			t.Errorf("node migrate: error %v does not name the pod (%s)", n.Err, jf.Pod)
		}
	}
	t.Logf("failure as reported:\n%v", err)
	// A failed Job fails its node at once, not when the node times out.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "not ready within") {
		t.Errorf("the node waited for its timeout instead of failing with the Job: %v", err)
	}
	want := map[string]apply.Status{"db": apply.StatusReady, "migrate": apply.StatusFailed, "side": apply.StatusReady, "api": apply.StatusSkipped, "web": apply.StatusSkipped}
	checkNodeStatuses(t, res, want)
	var skipped []string
	for _, ev := range events {
		if ev.Status == "skipped" {
			skipped = append(skipped, ev.Node)
		}
		if (ev.Node == "api" || ev.Node == "web") && ev.Status == "started" {
			t.Errorf("%s started though migrate failed", ev.Node)
		}
	}
	if strings.Join(skipped, ",") != "api,web" {
		t.Errorf("skipped events %v, want api,web", skipped)
	}
	checkLeaseReleased(t, f.cfg, p.Namespace)

	// The next run tries the failed Job again (it fails again here: its
	// pod is still annotated to fail) instead of failing on the old one.
	c, _ := apply.NewClients(f.cfg)
	failed, err := c.Kube.BatchV1().Jobs(p.Namespace).Get(context.Background(), "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err = run(t, context.Background(), f.cfg, p, apply.Options{Values: values, Timeout: 2 * time.Minute})
	if !errors.As(err, &jf) {
		t.Fatalf("second run: %v, want the Job to fail again", err)
	}
	again, err := c.Kube.BatchV1().Jobs(p.Namespace).Get(context.Background(), "migrate", metav1.GetOptions{})
	if err != nil || again.UID == failed.UID || res.Changed == 0 {
		t.Errorf("the failed Job was not run again (uid %s -> %s, changed %d, err %v)", failed.UID, again.UID, res.Changed, err)
	}
}

// TestReconcileFailingPodFailsItsWorkload: a Deployment whose pod cannot
// run (the test cluster fails it with exit code 4 and a message) fails its
// node with the pod's name, exit code and message instead of waiting for
// the timeout; dependents are skipped. Fixed and re-applied, the new
// revision rolls out although a pod of the old one failed.
func TestReconcileFailingPodFailsItsWorkload(t *testing.T) {
	failing := strings.Replace(deploymentYAML("api", ""), "labels: {app: api}",
		"labels: {app: api}\n      annotations: {codex-k8s.dev/fail: \"true\", codex-k8s.dev/exit-code: \"4\", codex-k8s.dev/fail-message: cannot reach db}", 1)
	f := newFixture(t, `
    - {name: api, group: internal, manifests: [api.yaml]}
    - {name: web, group: frontend, dependsOn: [api], manifests: [web.yaml]}
`, map[string]string{"api.yaml": failing, "web.yaml": deploymentYAML("web", "")})
	_, _, _, err := f.reconcile(apply.Options{Timeout: 2 * time.Minute})
	var nerr *apply.NodesError
	if !errors.As(err, &nerr) || len(nerr.Failed) != 1 || nerr.Failed[0].Name != "api" {
		t.Fatalf("err = %v, want node api failed", err)
	}
	var of *apply.ObjectFailedError
	if !errors.As(nerr.Failed[0].Err, &of) {
		t.Fatalf("api failed with %v, want the failing pod (not a timeout)", nerr.Failed[0].Err)
	}
	for _, want := range []string{"Deployment", "/api", "pod api-", "Failed", "exited 4", "cannot reach db"} {
		if !strings.Contains(of.Error(), want) {
			t.Errorf("error %q does not say %q", of.Error(), want)
		}
	}
	if len(nerr.Skipped) != 1 || nerr.Skipped[0].Name != "web" {
		t.Errorf("skipped %+v, want web", nerr.Skipped)
	}

	// The fix: the failed pod of the old revision does not fail the new one.
	f.write(map[string]string{"api.yaml": deploymentYAML("api", "")})
	if _, _, _, err := f.reconcile(apply.Options{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
}

// TestReconcileIgnoresEvictedPods: an evicted pod (failed, with a reason of
// its own) is replaced by its ReplicaSet and does not fail the workload.
func TestReconcileIgnoresEvictedPods(t *testing.T) {
	f := newFixture(t, `
    - {name: api, group: internal, manifests: [api.yaml]}
`, map[string]string{"api.yaml": deploymentYAML("api", "")})
	p, _, _, err := f.reconcile(apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := f.c.Kube.CoreV1().Pods(p.Namespace).List(f.ctx, metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods %v, %v", pods, err)
	}
	evicted := pods.Items[0]
	evicted.Status.Phase, evicted.Status.Reason, evicted.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	evicted.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Image: "example.test/api:1",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"}}}}
	if _, err := f.c.Kube.CoreV1().Pods(p.Namespace).UpdateStatus(f.ctx, &evicted, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.write(map[string]string{"api.yaml": strings.Replace(deploymentYAML("api", ""), "replicas: 1", "replicas: 2", 1)})
	if _, _, _, err := f.reconcile(apply.Options{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("an evicted pod failed the workload: %v", err)
	}
}

// TestReconcilePrune: objects that leave the stack are deleted, in reverse
// order, and waited for; claims are kept until annotated; objects the
// engine did not create are not touched.
func TestReconcilePrune(t *testing.T) {
	cfg := testCluster(t)
	c, _ := apply.NewClients(cfg)
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string]string{
		"services.yaml": stackYAML(`
    - {name: a, group: internal, manifests: [a/*.yaml]}
    - {name: b, group: edge, dependsOn: [a], manifests: [b/*.yaml]}
`, ""),
		"a/cm.yaml":     configMapYAML("a", map[string]string{"k": "v"}),
		"a/deploy.yaml": deploymentYAML("a", ""),
		"b/cm.yaml":     configMapYAML("b", map[string]string{"k": "v"}),
		"b/pvc.yaml": `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: b-data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
`,
	}
	path := writeStack(t, dir, files)
	prefix := uniquePrefix(t)
	p, values := loadPlan(t, path, "dev", "", prefix, nil)
	cleanup(t, cfg, p.Namespace)
	if _, _, err := run(t, ctx, cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	// An object of someone else's in the same namespace.
	if _, err := c.Kube.CoreV1().ConfigMaps(p.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-ours"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Node b leaves the stack; a loses its Deployment.
	files["services.yaml"] = stackYAML(`
    - {name: a, group: internal, manifests: [a/*.yaml]}
`, "")
	path = writeStack(t, dir, map[string]string{"services.yaml": files["services.yaml"]})
	mustRemove(t, dir+"/a/deploy.yaml")
	p2, _ := loadPlan(t, path, "dev", "", prefix, nil)
	res, events, err := run(t, ctx, cfg, p2, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pruned != 2 {
		t.Errorf("pruned %d objects, want 2 (ConfigMap b, Deployment a): %+v", res.Pruned, res.Objects)
	}
	gone := func(gvr schema.GroupVersionResource, name string) bool {
		_, err := c.Dynamic.Resource(gvr).Namespace(p.Namespace).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	cmGVR := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	if !gone(cmGVR, "b") || !gone(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "a") {
		t.Errorf("pruned objects still exist when reconcile returned")
	}
	if gone(cmGVR, "a") || gone(cmGVR, "not-ours") {
		t.Errorf("prune deleted an object it should keep")
	}
	pvcGVR := schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	if gone(pvcGVR, "b-data") {
		t.Errorf("prune deleted a claim that is not annotated %s=%s", apply.AnnotationPrune, apply.PruneAllow)
	}
	// Reverse order: b (later) before a.
	var order []string
	for _, ev := range events {
		if ev.Phase == "prune" && ev.Status == "pruned" {
			order = append(order, ev.Node)
			// Pruned nodes have left the stack; the inventory kept their group.
			if want := map[string]string{"a": "internal", "b": "edge"}[ev.Node]; ev.Group != want {
				t.Errorf("prune event of %s has group %q, want %q", ev.Node, ev.Group, want)
			}
		}
	}
	if strings.Join(order, ",") != "b,a" {
		t.Errorf("prune order %v, want b,a (reverse plan order)", order)
	}

	// Once allowed, the claim goes on the next run.
	patch := []byte(`{"metadata":{"annotations":{"` + apply.AnnotationPrune + `":"` + apply.PruneAllow + `"}}}`)
	if _, err := c.Dynamic.Resource(pvcGVR).Namespace(p.Namespace).Patch(ctx, "b-data", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	res, _, err = run(t, ctx, cfg, p2, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pruned != 1 || !gone(pvcGVR, "b-data") {
		t.Errorf("annotated claim not pruned: pruned %d", res.Pruned)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// TestReconcileTakesOverClientSideApply: an object last written by
// client-side `kubectl apply` is taken over: its fields move to the
// codex-bootstrap manager and a field the stack dropped is removed.
func TestReconcileTakesOverClientSideApply(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [cm.yaml]}
`, map[string]string{
		"cm.yaml": configMapYAML("settings", map[string]string{"keep": "1"}),
	})
	p, values := f.plan()
	// The shell-era deploy: kubectl apply (client-side) with two keys.
	if _, err := f.c.Kube.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := configMapYAML("settings", map[string]string{"keep": "0", "dropped": "yes"})
	cmd := exec.Command(kubectlPath(), "--kubeconfig", kubeconfigPath(t), "-n", p.Namespace, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(old)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	// A diff first says that client-side apply's fields move over.
	d, err := apply.DiffWith(f.ctx, f.c, p, apply.DiffOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Objects {
		if o.Object.Kind == "ConfigMap" && (!o.ClientSideApply || o.Change != apply.ChangeUpdate || strings.Contains(o.Diff, "last-applied")) {
			t.Errorf("diff of the client-side applied ConfigMap: %+v", o)
		}
	}
	if _, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	cm, err := f.c.Kube.CoreV1().ConfigMaps(p.Namespace).Get(f.ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["dropped"]; ok || cm.Data["keep"] != "1" {
		t.Errorf("data after takeover %v, want only keep=1", cm.Data)
	}
	if _, ok := cm.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok {
		t.Errorf("the client-side apply annotation is still there")
	}
	for _, mf := range cm.ManagedFields {
		if mf.Manager == "kubectl-client-side-apply" {
			t.Errorf("kubectl-client-side-apply still manages fields: %+v", cm.ManagedFields)
		}
	}
}

// TestReconcileKeepsAdoptedObjects: an object made by hand before the stack
// declared it is taken over (marked adopted), and kept with the data the
// engine never wrote when it leaves the stack, until annotated prune: allow.
func TestReconcileKeepsAdoptedObjects(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [m/*.yaml]}
`, map[string]string{
		"m/legacy.yaml": configMapYAML("legacy", map[string]string{"a": "1"}),
		"m/own.yaml":    configMapYAML("own", map[string]string{"a": "1"}),
	})
	p, _ := f.plan()
	cms := f.c.Kube.CoreV1().ConfigMaps(p.Namespace)
	if _, err := f.c.Kube.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(f.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Data: map[string]string{"keep": "important"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.reconcile(apply.Options{}); err != nil {
		t.Fatal(err)
	}
	legacy, err := cms.Get(f.ctx, "legacy", metav1.GetOptions{})
	if err != nil || legacy.Annotations[apply.AnnotationAdopted] != "true" || legacy.Data["keep"] != "important" || legacy.Data["a"] != "1" {
		t.Fatalf("legacy after the takeover: %+v, %v", legacy, err)
	}
	own, err := cms.Get(f.ctx, "own", metav1.GetOptions{})
	if err != nil || own.Annotations[apply.AnnotationAdopted] != "" {
		t.Fatalf("an object the engine created is marked adopted: %+v, %v", own, err)
	}

	// Both leave the stack: the engine's own goes, the adopted one stays.
	f.remove("m/legacy.yaml")
	f.remove("m/own.yaml")
	f.write(map[string]string{"m/other.yaml": configMapYAML("other", map[string]string{"a": "1"})})
	_, res, _, err := f.reconcile(apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pruned != 1 {
		t.Errorf("pruned %d, want 1 (own)", res.Pruned)
	}
	if _, err := cms.Get(f.ctx, "own", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("own is still there: %v", err)
	}
	legacy, err = cms.Get(f.ctx, "legacy", metav1.GetOptions{})
	if err != nil || legacy.Data["keep"] != "important" {
		t.Fatalf("prune touched the adopted object: %+v, %v", legacy, err)
	}

	// Once allowed, the next run deletes it.
	patch := []byte(`{"metadata":{"annotations":{"` + apply.AnnotationPrune + `":"` + apply.PruneAllow + `"}}}`)
	if _, err := cms.Patch(f.ctx, "legacy", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, res, _, err = f.reconcile(apply.Options{}); err != nil || res.Pruned != 1 {
		t.Fatalf("run after allowing: pruned %d, %v", res.Pruned, err)
	}
	if _, err := cms.Get(f.ctx, "legacy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("legacy is still there once allowed: %v", err)
	}
}

// TestReconcilePruneIsBounded: an object held by a finalizer that never
// finishes fails the prune after the node timeout, naming the finalizer,
// instead of waiting for ever.
func TestReconcilePruneIsBounded(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [m/*.yaml]}
`, map[string]string{
		"m/held.yaml": configMapYAML("held", map[string]string{"a": "1"}),
		"m/free.yaml": configMapYAML("free", map[string]string{"a": "1"}),
	})
	p, _, _, err := f.reconcile(apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cms := f.c.Kube.CoreV1().ConfigMaps(p.Namespace)
	hold := []byte(`{"metadata":{"finalizers":["example.com/hold"]}}`)
	if _, err := cms.Patch(f.ctx, "held", types.MergePatchType, hold, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		release := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = cms.Patch(context.Background(), "held", types.MergePatchType, release, metav1.PatchOptions{})
	})
	f.remove("m/held.yaml")
	_, _, events, err := f.reconcile(apply.Options{Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "example.com/hold") || !strings.Contains(err.Error(), "not deleted within 2s") {
		t.Fatalf("prune of an object held by a finalizer: %v", err)
	}
	var failed bool
	for _, ev := range events {
		if ev.Phase == "prune" && ev.Status == "failed" {
			failed = ev.Node == "cfg" && ev.Group == "internal"
		}
	}
	if !failed {
		t.Errorf("no prune failed event for node cfg in group internal: %+v", events)
	}
}

// TestReconcileConflictsAndImmutableFields: a field owned by another
// manager is a conflict that names the field and the manager, taken over
// only with ForceConflicts; a changed immutable field is explained, and
// replaced only with Recreate.
func TestReconcileConflictsAndImmutableFields(t *testing.T) {
	f := newFixture(t, `
    - {name: app, group: internal, manifests: [deploy.yaml]}
`, map[string]string{"deploy.yaml": deploymentYAML("app", "")})
	p, values := f.plan()
	if _, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	// Someone scales it by hand with their own apply.
	deployGVR := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	hand := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "app", "namespace": p.Namespace},
		"spec":     map[string]any{"replicas": int64(3)},
	}}
	if _, err := f.c.Dynamic.Resource(deployGVR).Namespace(p.Namespace).Apply(f.ctx, "app", hand, metav1.ApplyOptions{FieldManager: "ops-by-hand", Force: true}); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values})
	var ce *apply.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a ConflictError", err)
	}
	if len(ce.Conflicts) != 1 || ce.Conflicts[0].Field != ".spec.replicas" || ce.Conflicts[0].Manager != "ops-by-hand" {
		t.Errorf("conflicts %+v, want .spec.replicas owned by ops-by-hand", ce.Conflicts)
	}
	if !strings.Contains(ce.Error(), "force the apply") || strings.Contains(ce.Error(), "--") {
		t.Errorf("conflict message should say how to force, naming no flag: %v", ce)
	}
	if _, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values, ForceConflicts: true}); err != nil {
		t.Fatalf("with ForceConflicts: %v", err)
	}

	// The selector of a Deployment is immutable.
	f.write(map[string]string{"deploy.yaml": strings.ReplaceAll(deploymentYAML("app", ""), "app: app", "app: app2")})
	p2, _ := f.plan()
	_, _, err = run(t, f.ctx, f.cfg, p2, apply.Options{Values: values})
	var ie *apply.ImmutableError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want an ImmutableError", err)
	}
	if !strings.Contains(ie.Error(), "re-created") || strings.Contains(ie.Error(), "--") || !strings.Contains(strings.Join(ie.Fields, ","), "spec.selector") {
		t.Errorf("immutable error %v (fields %v) should name spec.selector and re-creating, and no flag", ie, ie.Fields)
	}
	before, err := f.c.Dynamic.Resource(deployGVR).Namespace(p.Namespace).Get(f.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := run(t, f.ctx, f.cfg, p2, apply.Options{Values: values, Recreate: true})
	if err != nil {
		t.Fatalf("with Recreate: %v", err)
	}
	after, err := f.c.Dynamic.Resource(deployGVR).Namespace(p.Namespace).Get(f.ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.GetUID() == before.GetUID() {
		t.Errorf("Recreate kept the same object")
	}
	if res.Changed != 1 {
		t.Errorf("recreate counted %d changed, want 1: %+v", res.Changed, res.Objects)
	}
}

// TestReconcileJobs: an unchanged completed Job is left alone; a changed
// one is deleted, waited for and created again.
func TestReconcileJobs(t *testing.T) {
	cfg := testCluster(t)
	c, _ := apply.NewClients(cfg)
	ctx := context.Background()
	dir := t.TempDir()
	job := func(version string) string {
		return `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "example.test/migrate:` + version + `"}]
`
	}
	path := writeStack(t, dir, map[string]string{
		"services.yaml": stackYAML(`
    - {name: migrate, group: migrations, manifests: [job.yaml]}
`, ""),
		"job.yaml": job("1"),
	})
	prefix := uniquePrefix(t)
	p, values := loadPlan(t, path, "dev", "", prefix, nil)
	cleanup(t, cfg, p.Namespace)
	if _, _, err := run(t, ctx, cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	first, err := c.Kube.BatchV1().Jobs(p.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, events, err := run(t, ctx, cfg, p, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Kube.BatchV1().Jobs(p.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
	if again.UID != first.UID || again.ResourceVersion != first.ResourceVersion || !res.NoChanges() {
		t.Errorf("an unchanged completed Job was touched (uid %s -> %s, rv %s -> %s)", first.UID, again.UID, first.ResourceVersion, again.ResourceVersion)
	}
	ready := 0
	for _, ev := range events {
		if ev.Node == "migrate" && ev.Status == "ready" {
			ready++
		}
	}
	if ready != 1 {
		t.Errorf("%d ready lines for the unchanged Job, want 1", ready)
	}

	writeStack(t, dir, map[string]string{"job.yaml": job("2")})
	p2, _ := loadPlan(t, path, "dev", "", prefix, nil)
	res, _, err = run(t, ctx, cfg, p2, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	changed, _ := c.Kube.BatchV1().Jobs(p.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
	if changed.UID == first.UID || changed.Spec.Template.Spec.Containers[0].Image != "example.test/migrate:2" {
		t.Errorf("changed Job not replaced")
	}
	if res.Changed != 1 {
		t.Errorf("changed %d, want 1", res.Changed)
	}
}

// TestReconcileLease: a run blocked by a live lease names the holder and
// its age; a stale lease is taken over; the lease is gone afterwards.
func TestReconcileLease(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [cm.yaml]}
`, map[string]string{
		"cm.yaml": configMapYAML("settings", map[string]string{"k": "v"}),
	})
	p, values := f.plan()
	if _, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	holder := "alice@build-host pid 4242"
	secs := int32(30)
	acquired := metav1.NewMicroTime(time.Now().Add(-90 * time.Second))
	renewed := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: apply.LeaseName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &acquired, RenewTime: &renewed},
	}
	leases := f.c.Kube.CoordinationV1().Leases(p.Namespace)
	if _, err := leases.Create(f.ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values})
	var le *apply.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("error %v, want a LockedError", err)
	}
	if le.Holder != holder || le.Age < 80*time.Second || !strings.Contains(le.Error(), holder) {
		t.Errorf("locked error %v (age %s) should name %q and its age", le, le.Age, holder)
	}

	// The holder stops renewing: after the lease duration it is stale.
	cur, _ := leases.Get(f.ctx, apply.LeaseName, metav1.GetOptions{})
	stale := metav1.NewMicroTime(time.Now().Add(-time.Minute))
	cur.Spec.RenewTime = &stale
	if _, err := leases.Update(f.ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("stale lease not taken over: %v", err)
	}
	if !strings.Contains(logs.String(), "taking over a stale reconcile lease") || !strings.Contains(logs.String(), holder) {
		t.Errorf("no message about taking over the stale lease:\n%s", logs.String())
	}
	checkLeaseReleased(t, f.cfg, p.Namespace)

	// Two runs at once: the second waits (LockWait) and then succeeds.
	p.Nodes[0].Objects[0].Object.Object["data"] = map[string]any{"k": "v2"}
	done := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values, Holder: fmt.Sprintf("run-%d", i), LockWait: time.Minute})
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("concurrent run: %v", err)
		}
	}
}

// TestReconcileLeaseLostNamesTheCause: a lease deleted mid-run stops the
// run, and the node it stopped says the lease went, not that it was
// interrupted.
func TestReconcileLeaseLostNamesTheCause(t *testing.T) {
	f := newFixture(t, `
    - {name: slow, group: internal, manifests: [slow.yaml]}
`, map[string]string{"slow.yaml": deploymentYAML("slow", "1h")})
	var ns string
	obs := apply.ObserverFunc(func(e apply.Event) {
		if e.Node == "slow" && e.Phase == apply.PhaseWait && e.Status == apply.StatusStarted {
			_ = f.c.Kube.CoordinationV1().Leases(ns).Delete(context.Background(), apply.LeaseName, metav1.DeleteOptions{})
		}
	})
	p, _ := f.plan()
	ns = p.Namespace
	_, res, _, err := f.reconcile(apply.Options{Observer: obs, LeaseDuration: 2 * time.Second})
	if !errors.Is(err, apply.ErrLeaseLost) {
		t.Fatalf("error %v, want ErrLeaseLost", err)
	}
	for _, n := range res.Nodes {
		if n.Name == "slow" && !errors.Is(n.Err, apply.ErrLeaseLost) {
			t.Errorf("slow: %s %v, want its error to name the lost lease", n.Status, n.Err)
		}
	}
}

// TestReconcileInterrupted: cancelling the context (SIGINT in the CLI)
// starts nothing new, releases the lease and returns context.Canceled.
func TestReconcileInterrupted(t *testing.T) {
	f := newFixture(t, `
    - {name: slow, group: internal, manifests: [slow.yaml]}
    - {name: after, group: edge, manifests: [after.yaml]}
`, map[string]string{
		"slow.yaml":  deploymentYAML("slow", "1h"),
		"after.yaml": deploymentYAML("after", ""),
	})
	p, values := f.plan()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := apply.ObserverFunc(func(e apply.Event) {
		if e.Node == "slow" && e.Phase == apply.PhaseWait && e.Status == apply.StatusStarted {
			cancel()
		}
	})
	res, events, err := run(t, ctx, f.cfg, p, apply.Options{Values: values, Observer: obs})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	for _, ev := range events {
		if ev.Node == "after" && ev.Status == "started" {
			t.Errorf("a node started after the interrupt")
		}
	}
	for _, n := range res.Nodes {
		if n.Name == "after" && n.Status != apply.StatusSkipped {
			t.Errorf("after: %s, want skipped", n.Status)
		}
	}
	checkLeaseReleased(t, f.cfg, p.Namespace)
}

// TestReconcileRenewsLease: a run longer than its lease duration keeps the
// lease by renewing it, so another run is still refused after that time.
func TestReconcileRenewsLease(t *testing.T) {
	f := newFixture(t, `
    - {name: slow, group: internal, manifests: [slow.yaml]}
`, map[string]string{
		"slow.yaml": deploymentYAML("slow", "6s"),
	})
	p, values := f.plan()
	ctx := context.Background()
	obs, waiting := waitingFor("slow")
	done := make(chan error, 1)
	go func() {
		_, _, err := run(t, ctx, f.cfg, p, apply.Options{Values: values, Holder: "long-run", LeaseDuration: 2 * time.Second, Observer: obs})
		done <- err
	}()
	<-waiting
	time.Sleep(3 * time.Second) // longer than the lease duration: only renewal keeps it
	_, _, err := run(t, ctx, f.cfg, p, apply.Options{Values: values, Holder: "second-run", LeaseDuration: 2 * time.Second})
	var le *apply.LockedError
	if !errors.As(err, &le) || le.Holder != "long-run" {
		t.Errorf("second run: %v, want LockedError held by long-run", err)
	}
	if err := <-done; err != nil {
		t.Errorf("long run: %v", err)
	}
	checkLeaseReleased(t, f.cfg, p.Namespace)
}

// TestReconcileNamespaceStuckTerminating: a namespace kept terminating by
// a finalizer is waited for no longer than the node timeout, with an error
// that says where to look; an interrupt while waiting stays an interrupt.
func TestReconcileNamespaceStuckTerminating(t *testing.T) {
	cfg := testCluster(t)
	c, _ := apply.NewClients(cfg)
	ctx := context.Background()
	path := writeStack(t, t.TempDir(), map[string]string{
		"services.yaml": stackYAML(`
    - {name: cfg, group: internal, manifests: [cm.yaml]}
`, ""),
		"cm.yaml": configMapYAML("settings", map[string]string{"k": "v"}),
	})
	p, values := loadPlan(t, path, "dev", "", uniquePrefix(t), nil)
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.test/hold"}}}
	if _, err := c.Kube.CoreV1().ConfigMaps(p.Namespace).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = c.Kube.CoreV1().ConfigMaps(p.Namespace).Patch(context.Background(), "held", types.MergePatchType, patch, metav1.PatchOptions{})
	})
	if err := c.Kube.CoreV1().Namespaces().Delete(ctx, p.Namespace, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	_, _, err := run(t, ctx, cfg, p, apply.Options{Values: values, Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "finalizers") {
		t.Errorf("%v, want an error naming finalizers after the 2s timeout", err)
	}

	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _, err = run(t, ictx, cfg, p, apply.Options{Values: values})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("interrupted wait: %v, want the context's error", err)
	}
}

// checkNodeStatuses fails the test for every node of res whose status is
// not the one want gives it.
func checkNodeStatuses(t *testing.T, res *apply.Result, want map[string]apply.Status) {
	t.Helper()
	for _, n := range res.Nodes {
		if n.Status != want[n.Name] {
			t.Errorf("node %s: %s, want %s (%v %s)", n.Name, n.Status, want[n.Name], n.Err, n.Cause)
		}
	}
}

// TestReconcileSkipsUnchangedObjects: a reconcile that changes nothing
// reads the objects and writes none of them (nor the inventory); a value
// edited by hand is put back, and a value the stack drops is removed, as
// an apply does.
func TestReconcileSkipsUnchangedObjects(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [cm.yaml]}
    - {name: web, group: edge, dependsOn: [cfg], manifests: [web.yaml]}
`, map[string]string{
		"cm.yaml":  configMapYAML("settings", map[string]string{"keep": "1", "dropped": "yes"}),
		"web.yaml": deploymentYAML("web", ""),
	})
	if _, _, _, err := f.reconcile(apply.Options{}); err != nil {
		t.Fatal(err)
	}
	p, values := f.plan()
	var mu sync.Mutex
	var writes []string
	counted := rest.CopyConfig(f.cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && !strings.Contains(r.URL.Path, "/leases") {
				mu.Lock()
				writes = append(writes, r.Method+" "+r.URL.Path)
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	res, _, err := run(t, f.ctx, counted, p, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoChanges() {
		t.Errorf("second reconcile changed %d, created %d", res.Changed, res.Created)
	}
	for _, w := range writes {
		if !strings.Contains(w, "/namespaces/"+p.Namespace+"/") || strings.Contains(w, "/configmaps") || strings.Contains(w, "/deployments") {
			if !strings.HasSuffix(w, "/namespaces/"+p.Namespace) { // the namespace's own apply
				t.Errorf("a reconcile that changes nothing wrote %s", w)
			}
		}
	}

	cms := f.c.Kube.CoreV1().ConfigMaps(p.Namespace)
	cm, err := cms.Get(f.ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["keep"] = "edited"
	if _, err := cms.Update(f.ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.reconcile(apply.Options{ForceConflicts: true}); err != nil {
		t.Fatal(err)
	}
	if cm, err = cms.Get(f.ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["keep"] != "1" {
		t.Errorf("value edited by hand after reconcile: %v (%v), want 1", cm.Data, err)
	}

	f.write(map[string]string{"cm.yaml": configMapYAML("settings", map[string]string{"keep": "1"})})
	if _, _, _, err := f.reconcile(apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if cm, err = cms.Get(f.ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Data["dropped"]; ok {
		t.Errorf("a key the stack dropped is still there: %v", cm.Data)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestReconcileNewNamespaceReadsNothing: a first reconcile into a namespace
// it creates applies without reading what cannot be there yet (no object is
// read; the namespace, the inventory and the Secret once each) and releases
// its lease without reading it; an object someone else made there meanwhile
// is still taken over as a read would have found it; the next reconcile
// reads again and changes nothing, the generated Secret value kept.
func TestReconcileNewNamespaceReadsNothing(t *testing.T) {
	f := newFixture(t, `
    - {name: cfg, group: internal, manifests: [cm.yaml]}
    - {name: web, group: edge, dependsOn: [cfg], manifests: [web.yaml]}
`, map[string]string{
		"cm.yaml":  configMapYAML("settings", map[string]string{"k": "v"}),
		"web.yaml": deploymentYAML("web", ""),
	})
	f.write(map[string]string{"services.yaml": stackYAML(`
    - {name: cfg, group: internal, manifests: [cm.yaml]}
    - {name: web, group: edge, dependsOn: [cfg], manifests: [web.yaml]}
`, `  secrets:
    - name: app-secrets
      data:
        KEY: {generate: {length: 24}}`)})
	p, values := f.plan()
	counted, reads := countReads(f.cfg, p.Namespace)
	// Someone else makes the Deployment web as the node starts: the
	// engine, which did not read it, must still take it over.
	dyn := f.c.Dynamic.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(p.Namespace)
	theirs := p.Nodes[1].Objects[0].Object.DeepCopy()
	made := make(chan error, 1)
	obs := apply.ObserverFunc(func(ev apply.Event) {
		if ev.Node == "web" && ev.Phase == apply.PhaseApply && ev.Status == apply.StatusStarted {
			_, err := dyn.Create(f.ctx, theirs, metav1.CreateOptions{FieldManager: "someone-else"})
			made <- err
		}
	})
	var logs bytes.Buffer
	res, _, err := run(t, f.ctx, counted, p, apply.Options{Values: values, Observer: obs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-made; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "taking over an object the engine did not create") {
		t.Errorf("no warning about the Deployment taken over:\n%s", logs.String())
	}
	want := []string{
		"/api/v1/namespaces/" + p.Namespace,
		"/api/v1/namespaces/" + p.Namespace + "/configmaps/" + apply.InventoryName,
		"/api/v1/namespaces/" + p.Namespace + "/secrets/app-secrets",
	}
	if got := reads(); !slices.Equal(got, want) {
		t.Errorf("a first reconcile into a new namespace read %q, want %q", got, want)
	}
	checkLeaseReleased(t, f.cfg, p.Namespace)
	web, err := dyn.Get(f.ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if web.GetAnnotations()[apply.AnnotationAdopted] != "true" {
		t.Errorf("Deployment made by someone else meanwhile not marked adopted: %v", web.GetAnnotations())
	}
	if res.Created != 3 || res.Changed != 1 { // namespace, Secret, ConfigMap; web taken over
		t.Errorf("first reconcile: created %d, changed %d, want 3 and 1", res.Created, res.Changed)
	}
	secret, err := f.c.Kube.CoreV1().Secrets(p.Namespace).Get(f.ctx, "app-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	counted, reads = countReads(f.cfg, p.Namespace)
	res, _, err = run(t, f.ctx, counted, p, apply.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoChanges() {
		t.Errorf("second reconcile changed %d, created %d", res.Changed, res.Created)
	}
	if got := reads(); len(got) < 4 {
		t.Errorf("second reconcile read only %q: the namespace exists, so what is in it must be read", got)
	}
	again, err := f.c.Kube.CoreV1().Secrets(p.Namespace).Get(f.ctx, "app-secrets", metav1.GetOptions{})
	if err != nil || string(again.Data["KEY"]) != string(secret.Data["KEY"]) {
		t.Errorf("generated value not kept by the second reconcile (%v)", err)
	}
}

// TestReconcileNewNamespaceTakenFirst: a reconcile that created the
// namespace but finds another one's inventory once it holds the lease (the
// other took the lease and finished in between) reads everything, and the
// Secret value the other generated is kept.
func TestReconcileNewNamespaceTakenFirst(t *testing.T) {
	f := newFixture(t, "", nil)
	f.write(map[string]string{"services.yaml": stackYAML(`
    - {name: cfg, group: internal, manifests: [cm.yaml]}
`, `  secrets:
    - name: app-secrets
      data:
        KEY: {generate: {length: 24}}`), "cm.yaml": configMapYAML("settings", map[string]string{"k": "v"})})
	p, values := f.plan()
	var other error
	var once sync.Once
	counted, reads := countReads(f.cfg, p.Namespace)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err == nil && r.Method == http.MethodPatch && r.URL.Path == "/api/v1/namespaces/"+p.Namespace && resp.StatusCode == http.StatusCreated {
				// The namespace is there: another reconcile goes all the
				// way before this one's answer arrives.
				once.Do(func() { _, _, other = run(t, f.ctx, f.cfg, p, apply.Options{Values: values, Holder: "other"}) })
			}
			return resp, err
		})
	})
	if _, _, err := run(t, f.ctx, counted, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	if other != nil {
		t.Fatalf("the other reconcile: %v", other)
	}
	if got := reads(); !slices.Contains(got, "/api/v1/namespaces/"+p.Namespace+"/configmaps/settings") {
		t.Errorf("reads %q: the ConfigMap the other reconcile applied was not read", got)
	}
	secrets, err := f.c.Kube.CoreV1().Secrets(p.Namespace).Get(f.ctx, "app-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := run(t, f.ctx, f.cfg, p, apply.Options{Values: values})
	if err != nil || !res.NoChanges() {
		t.Fatalf("third reconcile: %v, changes %+v", err, res)
	}
	if again, _ := f.c.Kube.CoreV1().Secrets(p.Namespace).Get(f.ctx, "app-secrets", metav1.GetOptions{}); string(again.Data["KEY"]) != string(secrets.Data["KEY"]) {
		t.Error("the generated value changed")
	}
}

// countReads is cfg with every GET that is not a watch counted, with
// its path, when it names ns.
func countReads(cfg *rest.Config, ns string) (*rest.Config, func() []string) {
	var mu sync.Mutex
	var reads []string
	counted := rest.CopyConfig(cfg)
	counted.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodGet && r.URL.Query().Get("watch") != "true" && strings.Contains(r.URL.Path, "/namespaces/"+ns) {
				mu.Lock()
				reads = append(reads, r.URL.Path)
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	return counted, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reads)
	}
}
