package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// applyStack is a one-environment stack with a prod environment, its
// namespaces unique to the test.
func applyStack(t *testing.T, project string, webAnnotations ...string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"services.yaml": `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: cli-test}
spec:
  project: ` + project + `
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    prod: {runtime: prod, namespaceTemplate: "{{ .Project }}-prod"}
  services:
    - {name: settings, group: internal, manifests: [cm.yaml]}
    - {name: web, group: edge, dependsOn: [settings], manifests: [web.yaml]}
`,
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {` + strings.Join(webAnnotations, ", ") + `}}
    spec: {containers: [{name: web, image: example.test/web:1}]}
`,
	}
	return writeFiles(t, dir, files)
}

// writeFiles writes files into dir and returns the path of its services.yaml.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "services.yaml")
}

func TestReconcileProdWithoutTerminalNeedsYes(t *testing.T) {
	path := applyStack(t, "cliprod")
	code, _, stderr := run(t, "reconcile", "--config", path, "--env", "prod", "--kubeconfig", "/nonexistent")
	if code != ExitUsage || !strings.Contains(stderr, "--yes") {
		t.Errorf("exit %d, stderr %q: want a usage error asking for --yes", code, stderr)
	}
}

func TestReconcileFlagValidation(t *testing.T) {
	for _, args := range [][]string{
		{"reconcile", "--env", "dev", "--parallel", "0"},
		{"reconcile", "--env", "dev", "--timeout", "-1s"},
	} {
		if code, _, stderr := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, stderr, ExitUsage)
		}
	}
}

// clusterKubeconfig returns the shared local cluster's kubeconfig
// (test/clustertest starts it when none runs; skipped under -short).
func clusterKubeconfig(t *testing.T) string {
	t.Helper()
	return clustertest.Shared(t).Kubeconfig
}

// TestReconcileCommandAgainstCluster runs `reconcile` as a user would:
// plain progress lines off a terminal, the events file, the summary, and
// "no changes" on the second run.
func TestReconcileCommandAgainstCluster(t *testing.T) {
	kc := clusterKubeconfig(t)
	project := "clicmd" + strconv.Itoa(os.Getpid())
	path := applyStack(t, project)
	ns := project + "-dev"
	t.Cleanup(func() { deleteNamespace(t, kc, ns) })
	events := filepath.Join(t.TempDir(), "events.jsonl")
	code, out, stderr := run(t, "reconcile", "--config", path, "--env", "dev", "--kubeconfig", kc, "--events", events)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"settings  applying", "settings  ready", "web       ready", "reconciled " + ns, "created"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"time", "node", "group", "phase", "status", "objects", "duration"} {
			if _, ok := m[k]; !ok {
				t.Errorf("events line %q lacks %q", sc.Text(), k)
			}
		}
		lines = append(lines, m)
	}
	if len(lines) == 0 || lines[0]["node"] != "settings" || lines[0]["phase"] != "apply" || lines[0]["status"] != "started" {
		t.Errorf("first event %v, want settings apply started", lines)
	}

	code, out, _ = run(t, "reconcile", "--config", path, "--env", "dev", "--kubeconfig", kc)
	if code != 0 || !strings.Contains(out, "no changes") {
		t.Errorf("second run: exit %d, output:\n%s", code, out)
	}
}

// TestReconcileCommandInterrupted: cancelling the context (what SIGINT
// does in Main) while a node waits exits 130 and leaves no lease behind.
func TestReconcileCommandInterrupted(t *testing.T) {
	kc := clusterKubeconfig(t)
	project := "cliint" + strconv.Itoa(os.Getpid())
	path := applyStack(t, project, `codex-k8s.dev/ready-delay: "1h"`)
	t.Cleanup(func() { deleteNamespace(t, kc, project+"-dev") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(2*time.Second, cancel)
	var out, errOut bytes.Buffer
	f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, LookupEnv: func(string) (string, bool) { return "", false }}
	code := Run(ctx, f, []string{"reconcile", "--config", path, "--env", "dev", "--kubeconfig", kc})
	if code != ExitInterrupt {
		t.Errorf("exit %d, want %d\n%s%s", code, ExitInterrupt, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "web       applying") {
		t.Errorf("web never started:\n%s", out.String())
	}
	cfg, _ := clientcmd.BuildConfigFromFlags("", kc)
	kube, _ := kubernetes.NewForConfig(cfg)
	if _, err := kube.CoordinationV1().Leases(project+"-dev").Get(context.Background(), "codex-bootstrap-reconcile", metav1.GetOptions{}); err == nil {
		t.Errorf("the lease is still held after the interrupt")
	}
}

func deleteNamespace(t *testing.T, kubeconfig, ns string) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return
	}
	_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
}
