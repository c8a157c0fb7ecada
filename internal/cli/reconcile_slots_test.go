package cli

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// slotStackFile writes a stack with a slot environment for project.
func slotStackFile(t *testing.T, project string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"services.yaml": `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: ` + project + `}
spec:
  project: ` + project + `
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    ai-slot: {from: dev, slots: true, namespaceTemplate: "{{ .Project }}-slot-{{ .Slot }}"}
  services:
    - {name: settings, manifests: [cm.yaml]}
`,
		"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
	}
	return writeFiles(t, dir, files)
}

// TestReconcileSlotFlagRules: the slot lifecycle flags in combinations that
// mean nothing are usage errors, before anything is contacted.
func TestReconcileSlotFlagRules(t *testing.T) {
	path := slotStackFile(t, "slotflags")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--env", "ai-slot", "--slot", "1", "--delete", "--prune-expired"}, "--delete and --prune-expired do not go together"},
		{[]string{"--env", "ai-slot", "--slot", "1", "--prune-expired"}, "--prune-expired looks at every slot of the environment: drop --slot"},
		{[]string{"--env", "ai-slot", "--slot", "1", "--delete", "--ttl", "1h"}, "--ttl is for a reconcile"},
		{[]string{"--env", "ai-slot", "--slot", "1", "--ttl", "-1h"}, "--ttl must not be negative"},
		{[]string{"--env", "ai-slot", "--slot", "1", "--delete", "-o", "json"}, "--output and --output-dir are for --dry-run"},
		{[]string{"--env", "ai-slot", "--slot", "1", "--delete", "--dry-run"}, "--dry-run contacts nothing, and what --delete and --prune-expired would delete is known only to the cluster"},
		{[]string{"--env", "ai-slot", "--prune-expired", "--dry-run"}, "kubectl get namespaces -l codex-k8s.dev/env=ai-slot,codex-k8s.dev/slot"},
		{[]string{"--env", "ai-slot", "--delete"}, "pass --slot"},
		{[]string{"--env", "ai-slot", "--prune-expired", "--diff"}, "--diff compares a plan with the cluster"},
		{[]string{"--env", "dev", "--prune-expired"}, "--prune-expired is for slot environments: environment dev is not one"},
		{[]string{"--env", "dev", "--ttl", "1h", "--dry-run"}, "--ttl is for slot environments: environment dev is not one"},
	} {
		code, _, stderr := run(t, append([]string{"reconcile", "--config", path, "--kubeconfig", "/nonexistent"}, tt.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestReconcileSlotLifecycleCommands runs a slot's life through the
// command on the shared cluster: reconcile with --ttl, --delete refused on
// a namespace the stack does not own, --prune-expired, --delete.
func TestReconcileSlotLifecycleCommands(t *testing.T) {
	kc := clusterKubeconfig(t)
	project := "clislot" + strconv.Itoa(os.Getpid())
	path := slotStackFile(t, project)
	slot1, slot2 := project+"-slot-1", project+"-slot-2"
	t.Cleanup(func() { deleteNamespace(t, kc, slot1); deleteNamespace(t, kc, slot2) })
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	reconcile := func(args ...string) (int, string, string) {
		return run(t, append([]string{"reconcile", "--config", path, "--kubeconfig", kc, "--env", "ai-slot"}, args...)...)
	}
	if code, out, stderr := reconcile("--slot", "1", "--ttl", "2h"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s\n%s", code, out, stderr)
	}
	ns, err := kube.CoreV1().Namespaces().Get(ctx, slot1, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Annotations["codex-k8s.dev/expires-at"] == "" || ns.Labels["codex-k8s.dev/slot"] != "1" || ns.Labels["codex-k8s.dev/stack"] != project {
		t.Errorf("slot namespace labels %v, annotations %v", ns.Labels, ns.Annotations)
	}

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: slot2}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := reconcile("--slot", "2", "--delete")
	if code != ExitFailure || !strings.Contains(stderr, "namespace "+slot2+" is not a slot namespace of this stack") || !strings.Contains(stderr, "refusing to delete it") {
		t.Errorf("--delete of a namespace made by hand: exit %d, stderr %q", code, stderr)
	}

	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"--prune-expired"}, "0 expired slot(s) of ai-slot deleted, 1 kept"},
		{[]string{"--slot", "1", "--delete"}, "deleted namespace " + slot1 + " (slot 1 of ai-slot)"},
		{[]string{"--slot", "1", "--delete"}, "namespace " + slot1 + " (slot 1) does not exist: nothing to delete"},
	} {
		code, out, stderr := reconcile(step.args...)
		if code != 0 || !strings.Contains(out, step.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", step.args, code, out, stderr, step.want)
		}
	}
}
