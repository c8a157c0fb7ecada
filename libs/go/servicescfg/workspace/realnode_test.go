package workspace_test

// The workspace on the shared cluster's real node: a claim of local
// volumes (which honour fsGroup), an agent-run pod that mounts it through
// PodMount, and sync through the helper pod over the API server's exec.
// Run with
//
//	go test ./libs/go/servicescfg/workspace -run Real -v

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

const realTimeout = 90 * time.Second

// realWorkspace makes a claim in a fresh namespace and returns its spec.
func realWorkspace(t *testing.T, env *clustertest.Env) workspace.Spec {
	t.Helper()
	sc := clustertest.RealNodeStorageClass
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "workspace"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &sc,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := env.Client.CoreV1().PersistentVolumeClaims(env.Namespace).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return workspace.Spec{Namespace: env.Namespace, ClaimName: "workspace", MountPath: "/src", UID: 1000, GID: 1000, FSGroup: 1000}
}

// agentPod runs testbox with args as an agent-run pod of the slot: the
// workspace through PodMount, on the real node.
func agentPod(t *testing.T, env *clustertest.Env, node *clustertest.RealNode, s workspace.Spec, name string, args ...string) {
	t.Helper()
	grace := int64(1)
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: "agent", Image: node.Image(t, "testbox"), ImagePullPolicy: corev1.PullNever, Args: args,
		}},
	}
	workspace.PodMount(s).Apply(&spec)
	node.Place(&spec)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if _, err := env.Client.CoreV1().Pods(env.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// agentOutput runs an agent pod to its end and returns its log.
func agentOutput(t *testing.T, env *clustertest.Env, node *clustertest.RealNode, s workspace.Spec, name string, args ...string) string {
	t.Helper()
	agentPod(t, env, node, s, name, args...)
	clustertest.WaitFor(t, realTimeout, "pod "+name+" done", func(ctx context.Context) (bool, error) {
		p, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
	})
	out, err := env.Client.CoreV1().Pods(env.Namespace).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestRealSyncAndAgentPodShareTheWorkspace: sources synced through the
// helper are read by an agent-run pod mounted with PodMount, as the
// workspace owner; what the agent writes is the owner's too, and the next
// sync deletes what left the tree.
func TestRealSyncAndAgentPodShareTheWorkspace(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	node := env.RealNode(t)
	s := realWorkspace(t, env)
	ctx := t.Context()

	// The agent pod is the claim's first consumer: the volume lands on
	// the real node, where the helper then follows it.
	if out := agentOutput(t, env, node, s, "agent-id", "id"); !strings.Contains(out, "uid=1000 gid=1000") {
		t.Fatalf("agent pod runs as %q, want uid=1000 gid=1000", out)
	}
	helper, err := workspace.EnsureHelper(ctx, env.Client, s, node.Image(t, "toolbox"))
	if err != nil {
		t.Fatal(err)
	}
	if helper.Spec.NodeName != clustertest.RealNodeName {
		t.Fatalf("helper on node %q, want the claim's node %s", helper.Spec.NodeName, clustertest.RealNodeName)
	}
	src := t.TempDir()
	for p, data := range map[string]string{"catalog/main.go": "package main // v1\n", "catalog/gone.go": "x", ".gitignore": "*.tmp\n", "scratch.tmp": "no"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := workspace.NewTree(src)
	if err != nil {
		t.Fatal(err)
	}
	syncer := &workspace.Syncer{Tree: tree, Spec: s, Pod: helper.Name, Exec: workspace.KubeExecutor{Config: env.Config, Client: env.Client}}
	res, err := syncer.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first sync: %d files, %d bytes, scan %s, send %s", len(res.Changes.Put), res.Bytes, res.Scan, res.Send)

	out := agentOutput(t, env, node, s, "agent-read", "stat", "/src/catalog/main.go")
	if !strings.Contains(out, "uid=1000 gid=1000") {
		t.Fatalf("synced file: %q, want it owned by uid 1000 gid 1000", out)
	}
	if out := agentOutput(t, env, node, s, "agent-write", "write", "/src/catalog/agent.txt", "from the agent"); !strings.Contains(out, "wrote") {
		t.Fatalf("agent write: %q", out)
	}
	if err := os.Remove(filepath.Join(src, "catalog/gone.go")); err != nil {
		t.Fatal(err)
	}
	if _, err := syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var ls bytes.Buffer
	ex := workspace.KubeExecutor{Config: env.Config, Client: env.Client}
	if err := ex.Exec(ctx, s.Namespace, helper.Name, workspace.HelperName, []string{"ls", "-n", "/src/catalog", "/src"}, nil, &ls, nil); err != nil {
		t.Fatal(err)
	}
	got := ls.String()
	for _, want := range []string{"main.go", "agent.txt"} {
		if !strings.Contains(got, want) {
			t.Errorf("workspace lacks %s:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"gone.go", "scratch.tmp"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("workspace still has %s:\n%s", unwanted, got)
		}
	}
}
