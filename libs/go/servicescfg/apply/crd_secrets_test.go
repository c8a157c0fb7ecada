package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

func crdYAML(group, kind, plural, scope string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[3]s.%[1]s}
spec:
  group: %[1]s
  scope: %[4]s
  names: {kind: %[2]s, plural: %[3]s, singular: %[5]s, listKind: %[2]sList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`, group, kind, plural, scope, strings.ToLower(kind))
}

// TestReconcileCRDsAndCustomConditions: a CRD applied by one node is
// established and discovered before the custom resources of a dependent
// node are applied; those are ready only when the condition declared in
// services.yaml holds (set here as their controller would).
func TestReconcileCRDsAndCustomConditions(t *testing.T) {
	group := uniquePrefix(t) + ".codex-k8s.test"
	f := newFixture(t, `
    - name: widget-crd
      group: stateful
      clusterScoped: true
      manifests: [crd.yaml]
    - name: widgets
      group: internal
      dependsOn: [widget-crd]
      readiness:
        timeout: 1m
        conditions: [{kind: Widget, type: Synced, status: "True"}]
      manifests: [widget.yaml]
`, map[string]string{
		"crd.yaml": crdYAML(group, "Widget", "widgets", "Namespaced"),
		"widget.yaml": `apiVersion: ` + group + `/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
`,
	})
	p, values := f.plan()
	t.Cleanup(func() {
		_ = exec.Command(kubectlPath(), "--kubeconfig", kubeconfigPath(t), "delete", "crd", "widgets."+group, "--wait=false").Run()
	})
	// Play the controller: mark the widget Synced once it exists.
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	synced := make(chan time.Time, 1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			u, err := f.c.Dynamic.Resource(gvr).Namespace(p.Namespace).Get(ctx, "w1", metav1.GetOptions{})
			if err != nil {
				time.Sleep(100 * time.Millisecond) // the test's controller polls; the engine watches
				continue
			}
			time.Sleep(500 * time.Millisecond) // the engine is waiting now
			_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Synced", "status": "True", "reason": "Done", "message": "", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}}, "status", "conditions")
			if _, err := f.c.Dynamic.Resource(gvr).Namespace(p.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err == nil {
				synced <- time.Now()
				return
			}
		}
	}()
	res, events, err := run(t, ctx, f.cfg, p, apply.Options{Values: values})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	checkAllReady(t, p, res)
	var readyAt time.Time
	for _, ev := range events {
		if ev.Node == "widgets" && ev.Status == "ready" {
			readyAt = ev.Time
		}
	}
	select {
	case at := <-synced:
		if readyAt.Before(at.Add(-50 * time.Millisecond)) {
			t.Errorf("widgets ready at %v, before its Synced condition was set at %v", readyAt, at)
		}
	default:
		t.Errorf("the widget was never marked Synced")
	}
}

// TestReconcileSlotScope: in a slot environment a cluster-scoped custom
// kind (known only from the cluster's REST mapping) is rejected unless its
// node declares clusterScoped.
func TestReconcileSlotScope(t *testing.T) {
	cfg := testCluster(t)
	group := uniquePrefix(t) + ".codex-k8s.test"
	dir := t.TempDir()
	path := writeStack(t, dir, map[string]string{
		"services.yaml": stackYAML(`
    - {name: gadget-crd, group: stateful, clusterScoped: true, manifests: [crd.yaml]}
    - {name: gadgets, group: internal, dependsOn: [gadget-crd], manifests: [gadget.yaml]}
`, ""),
		"crd.yaml": crdYAML(group, "Gadget", "gadgets", "Cluster"),
		"gadget.yaml": `apiVersion: ` + group + `/v1
kind: Gadget
metadata: {name: shared-gadget}
`,
	})
	prefix := uniquePrefix(t)
	p, values := loadPlan(t, path, "slot", "7", prefix, nil)
	cleanup(t, cfg, p.Namespace)
	t.Cleanup(func() {
		_ = exec.Command(kubectlPath(), "--kubeconfig", kubeconfigPath(t), "delete", "crd", "gadgets."+group, "--wait=false").Run()
	})
	_, _, err := run(t, context.Background(), cfg, p, apply.Options{Values: values})
	var se *apply.ScopeError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a ScopeError", err)
	}
	if se.Node != "gadgets" || !strings.Contains(se.Error(), "cluster-scoped") || !strings.Contains(se.Error(), "clusterScoped: true") {
		t.Errorf("scope error %v", se)
	}
}

// TestReconcileSecrets: fromConfig values come from the resolved config, a
// missing one names the variable (never a value); generated values are
// created once and kept; no value reaches the logs or events.
func TestReconcileSecrets(t *testing.T) {
	cfg := testCluster(t)
	c, _ := apply.NewClients(cfg)
	ctx := context.Background()
	dir := t.TempDir()
	path := writeStack(t, dir, map[string]string{
		"services.yaml": stackYAML(`
    - {name: cfg, group: internal, manifests: [cm.yaml]}
`, `  secrets:
    - name: app-secrets
      data:
        TOKEN: {fromConfig: APP_TOKEN}
        KEY: {generate: {length: 40}}
        HEXKEY: {generate: {length: 16, charset: hex}}
  bootstrap:
    variables:
      - {name: APP_TOKEN, required: true, secret: true}
`),
		"cm.yaml": configMapYAML("settings", map[string]string{"k": "v"}),
	})
	token := "tok-" + uniquePrefix(t) + "-secret-value"
	prefix := uniquePrefix(t)

	// Missing value: a clear error naming the variable.
	p, values := loadPlan(t, path, "dev", "", prefix, map[string]string{})
	cleanup(t, cfg, p.Namespace)
	_, _, err := run(t, ctx, cfg, p, apply.Options{Values: values})
	var me *apply.MissingValueError
	if !errors.As(err, &me) || me.Variable != "APP_TOKEN" || !strings.Contains(err.Error(), "APP_TOKEN") {
		t.Fatalf("error %v, want a MissingValueError naming APP_TOKEN", err)
	}

	p, values = loadPlan(t, path, "dev", "", prefix, map[string]string{"APP_TOKEN": token})
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, events, err := run(t, ctx, cfg, p, apply.Options{Values: values, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.Kube.CoreV1().Secrets(p.Namespace).Get(ctx, "app-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["TOKEN"]) != token {
		t.Errorf("TOKEN is not the configured value")
	}
	if len(sec.Data["KEY"]) != 40 || len(sec.Data["HEXKEY"]) != 16 || strings.Trim(string(sec.Data["HEXKEY"]), "0123456789abcdef") != "" {
		t.Errorf("generated values have the wrong shape (lengths %d, %d)", len(sec.Data["KEY"]), len(sec.Data["HEXKEY"]))
	}
	for _, v := range []string{token, string(sec.Data["KEY"]), string(sec.Data["HEXKEY"])} {
		checkNoSecretValues(t, v, logs.String(), events)
	}

	// Generated values are kept on the next run, even with a new token.
	p, values = loadPlan(t, path, "dev", "", prefix, map[string]string{"APP_TOKEN": token + "-rotated"})
	if _, _, err := run(t, ctx, cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	again, _ := c.Kube.CoreV1().Secrets(p.Namespace).Get(ctx, "app-secrets", metav1.GetOptions{})
	if !bytes.Equal(again.Data["KEY"], sec.Data["KEY"]) || !bytes.Equal(again.Data["HEXKEY"], sec.Data["HEXKEY"]) {
		t.Errorf("a generated value was regenerated")
	}
	if string(again.Data["TOKEN"]) != token+"-rotated" {
		t.Errorf("TOKEN did not follow the config")
	}
}

// TestReconcileSurvivesAPIServerRestart restarts kube-apiserver in the
// middle of a reconcile; the run may fail or ride it out, and a re-run
// converges with every object present exactly once and no Job run twice.
//
// It runs on a private cluster (clustertest.Private) so that tests using
// the shared one at the same time are not disturbed.
func TestReconcileSurvivesAPIServerRestart(t *testing.T) {
	private := clustertest.Private(t)
	cfg := rest.CopyConfig(private.Config)
	c, _ := apply.NewClients(cfg)
	dir := t.TempDir()
	nodes := `
    - {name: db, group: stateful, manifests: [db.yaml]}
    - {name: migrate, group: migrations, dependsOn: [db], manifests: [job.yaml]}
`
	files := map[string]string{
		"db.yaml": deploymentYAML("db", "2s"),
		"job.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "example.test/migrate:1"}]
`,
	}
	for i := range 6 {
		name := fmt.Sprintf("svc%d", i)
		nodes += fmt.Sprintf("    - {name: %s, group: internal, dependsOn: [migrate], manifests: [%s.yaml]}\n", name, name)
		files[name+".yaml"] = deploymentYAML(name, "3s")
	}
	files["services.yaml"] = stackYAML(nodes, "")
	path := writeStack(t, dir, files)
	p, values := loadPlan(t, path, "dev", "", uniquePrefix(t), nil)
	cleanup(t, cfg, p.Namespace)

	obs, waiting := waitingFor("svc0")
	done := make(chan error, 1)
	go func() {
		_, _, err := run(t, context.Background(), cfg, p, apply.Options{Values: values, Observer: obs, Timeout: 2 * time.Minute})
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("reconcile ended before the restart: %v", err)
	}
	private.Restart(t, "kube-apiserver")
	t.Logf("reconcile across the restart: %v", <-done)
	ctx := context.Background()
	job1, err := c.Kube.BatchV1().Jobs(p.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := run(t, ctx, cfg, p, apply.Options{Values: values, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatalf("re-run after the restart: %v", err)
	}
	checkAllReady(t, p, res)
	job2, _ := c.Kube.BatchV1().Jobs(p.Namespace).Get(ctx, "migrate", metav1.GetOptions{})
	if job1.UID != job2.UID {
		t.Errorf("the migration Job ran again after the restart")
	}
	deploys, err := c.Kube.AppsV1().Deployments(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deploys.Items) != 7 {
		t.Errorf("%d Deployments, want 7", len(deploys.Items))
	}
	for _, d := range deploys.Items {
		rs, err := c.Kube.AppsV1().ReplicaSets(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + d.Name})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs.Items) != 1 {
			t.Errorf("Deployment %s has %d ReplicaSets, want 1 (nothing rolled twice)", d.Name, len(rs.Items))
		}
	}
	third, _, err := run(t, ctx, cfg, p, apply.Options{Values: values})
	if err != nil || !third.NoChanges() {
		t.Errorf("third run: err %v, no changes %v", err, third != nil && third.NoChanges())
	}
}

// TestReconcileInventoryScopeOfNewKinds: a cluster-scoped custom resource
// applied in the same run as its CRD is listed in the inventory without a
// namespace, so that a later prune finds it.
func TestReconcileInventoryScopeOfNewKinds(t *testing.T) {
	group := uniquePrefix(t) + ".codex-k8s.test"
	f := newFixture(t, `
    - name: gadgets
      group: stateful
      clusterScoped: true
      manifests: [crd.yaml, gadget.yaml]
`, map[string]string{
		"crd.yaml": crdYAML(group, "Gadget", "gadgets", "Cluster"),
		"gadget.yaml": `apiVersion: ` + group + `/v1
kind: Gadget
metadata: {name: g1}
spec: {size: 1}
`,
	})
	p, values := f.plan()
	t.Cleanup(func() {
		_ = exec.Command(kubectlPath(), "--kubeconfig", kubeconfigPath(t), "delete", "crd", "gadgets."+group, "--wait=false").Run()
	})
	if _, _, err := run(t, context.Background(), f.cfg, p, apply.Options{Values: values}); err != nil {
		t.Fatal(err)
	}
	cm, err := f.c.Kube.CoreV1().ConfigMaps(p.Namespace).Get(context.Background(), apply.InventoryName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var inv struct {
		Nodes []struct {
			Name    string
			Objects []apply.ObjectRef
		}
	}
	if err := json.Unmarshal([]byte(cm.Data["inventory.json"]), &inv); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range inv.Nodes {
		for _, o := range n.Objects {
			if o.Kind == "Gadget" {
				found = true
				if o.Namespace != "" {
					t.Errorf("cluster-scoped Gadget listed in namespace %q", o.Namespace)
				}
			}
		}
	}
	if !found {
		t.Errorf("Gadget missing from the inventory: %s", cm.Data["inventory.json"])
	}
}
