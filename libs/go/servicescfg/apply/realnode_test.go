package apply_test

// Real-pod cases: the same behaviours as the kwok-simulated ones, with
// containers that really run on the shared cluster's real node (testbox
// image of test/images). The stacks get the image and the node's
// placement through vars, as a project's stack would.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// realVars are the stack's vars for the real node.
func realVars(t *testing.T) string {
	t.Helper()
	node := clustertest.Shared(t).RealNode(t)
	return fmt.Sprintf("  vars: {testImage: %q, realNodeKey: %q}\n", node.Image(t, "testbox"), clustertest.RealNodeKey)
}

// realPodSpec is the pod spec of a manifest template: on the real node,
// running testbox with args (YAML flow list items).
func realPodSpec(container, args, extra string) string {
	return `      nodeSelector: {'{{ .Vars.realNodeKey }}': "true"}
      tolerations: [{key: '{{ .Vars.realNodeKey }}', operator: Equal, value: "true", effect: NoSchedule}]
      terminationGracePeriodSeconds: 1` + extra + `
      containers:
      - name: ` + container + `
        image: '{{ .Vars.testImage }}'
        imagePullPolicy: Never
        args: [` + args + `]
`
}

func realDeploymentYAML(name, args, probe string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
`, name) + realPodSpec("main", args, "") + probe
}

const realReadinessProbe = `        readinessProbe: {httpGet: {path: /ready, port: 8080}, periodSeconds: 1, failureThreshold: 1}
`

// TestReconcileRealFailedMigrationStopsDependents: a migration Job whose
// container really exits 3 fails its node with that exit code, the
// container's message and its log tail; dependents are skipped.
func TestReconcileRealFailedMigrationStopsDependents(t *testing.T) {
	vars := realVars(t)
	nodes := `
    - {name: db, group: stateful, manifests: [db.yaml]}
    - {name: migrate, group: migrations, dependsOn: [db], manifests: [migrate.yaml]}
    - {name: api, group: internal, dependsOn: [migrate], manifests: [api.yaml]}
`
	f := newFixture(t, nodes, map[string]string{
		"db.yaml":  realDeploymentYAML("db", "serve", realReadinessProbe),
		"api.yaml": realDeploymentYAML("api", "serve", realReadinessProbe),
		"migrate.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
` + realPodSpec("migrate", `exit, -log, "applying 001_init.sql", -log, "applying 002_users.sql", "3", 'relation "users" already exists'`, ""),
	})
	f.write(map[string]string{"services.yaml": stackYAML(nodes, vars)})
	start := time.Now()
	_, res, _, err := f.reconcile(apply.Options{Timeout: 2 * time.Minute})
	var jf *apply.JobFailedError
	if !errors.As(err, &jf) {
		t.Fatalf("reconcile error %v, want a JobFailedError", err)
	}
	t.Logf("failure as reported (after %s):\n%v", time.Since(start).Round(time.Millisecond), err)
	const podWant = `: Failed; container migrate exited 3 (Error): relation "users" already exists`
	if !strings.HasPrefix(jf.Pod, "migrate-") || !strings.HasSuffix(jf.Pod, podWant) {
		t.Errorf("job failure pod %q, want migrate-<suffix>%s", jf.Pod, podWant)
	}
	wantLog := "applying 001_init.sql\napplying 002_users.sql\nrelation \"users\" already exists\n"
	if jf.Log != wantLog || jf.LogErr != "" {
		t.Errorf("log tail %q (error %q), want %q", jf.Log, jf.LogErr, wantLog)
	}
	want := map[string]apply.Status{"db": apply.StatusReady, "migrate": apply.StatusFailed, "api": apply.StatusSkipped}
	checkNodeStatuses(t, res, want)
}

// TestReconcileRealReadinessFollowsProbes: a node is ready when its pod's
// probe really answers; a probe that really fails keeps the node waiting
// until its timeout, and dependents never start.
func TestReconcileRealReadinessFollowsProbes(t *testing.T) {
	vars := realVars(t)
	nodes := `
    - {name: ok, group: internal, manifests: [ok.yaml]}
    - {name: unready, group: internal, manifests: [unready.yaml]}
    - {name: web, group: frontend, dependsOn: [unready], manifests: [web.yaml]}
`
	f := newFixture(t, nodes, map[string]string{
		"ok.yaml":      realDeploymentYAML("ok", "serve", realReadinessProbe),
		"unready.yaml": realDeploymentYAML("unready", "serve, -ready=false", realReadinessProbe),
		"web.yaml":     realDeploymentYAML("web", "serve", realReadinessProbe),
	})
	f.write(map[string]string{"services.yaml": stackYAML(nodes, vars)})
	_, res, _, err := f.reconcile(apply.Options{Timeout: 20 * time.Second})
	var nerr *apply.NodesError
	if !errors.As(err, &nerr) || len(nerr.Failed) != 1 || nerr.Failed[0].Name != "unready" {
		t.Fatalf("err = %v, want node unready failed", err)
	}
	if !strings.Contains(nerr.Failed[0].Err.Error(), "not ready") {
		t.Errorf("unready failed with %v, want a readiness timeout", nerr.Failed[0].Err)
	}
	want := map[string]apply.Status{"ok": apply.StatusReady, "unready": apply.StatusFailed, "web": apply.StatusSkipped}
	checkNodeStatuses(t, res, want)
}

// TestReconcileRealCrashLoopFailsItsNode: a Deployment whose container
// really exits 1 over and over fails its node once the kubelet backs off
// (CrashLoopBackOff), with the container's exit code and message, long
// before the timeout. (It has a readiness probe, as a service has: without
// one, a container that lives a moment counts as available, for
// Kubernetes too.)
func TestReconcileRealCrashLoopFailsItsNode(t *testing.T) {
	vars := realVars(t)
	nodes := `
    - {name: api, group: internal, manifests: [api.yaml]}
`
	f := newFixture(t, nodes, map[string]string{
		"api.yaml": realDeploymentYAML("api", `exit, "1", "cannot connect to postgres: connection refused"`, realReadinessProbe),
	})
	f.write(map[string]string{"services.yaml": stackYAML(nodes, vars)})
	start := time.Now()
	_, _, _, err := f.reconcile(apply.Options{Timeout: 2 * time.Minute})
	var of *apply.ObjectFailedError
	if !errors.As(err, &of) {
		t.Fatalf("err = %v, want the crash-looping pod (not a timeout)", err)
	}
	t.Logf("failure as reported (after %s):\n%v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{"Deployment", "/api", "pod api-", "CrashLoopBackOff", "exited 1", "cannot connect to postgres: connection refused"} {
		if !strings.Contains(of.Error(), want) {
			t.Errorf("error %q does not say %q", of.Error(), want)
		}
	}
}
