// Package clustertest gives integration tests a real Kubernetes API: the
// control plane that test/cluster/cluster.sh runs on 127.0.0.1 (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok nodes).
//
// New(t) is the usual entry point: it returns clients for the shared cluster
// and a fresh namespace that is deleted when the test ends. The shared
// cluster is the one cluster.sh runs; when none runs, the first test to ask
// starts it (cluster.sh up) under a file lock, so test binaries of several
// packages running at once share one cluster. It keeps running afterwards;
// stop it with test/cluster/cluster.sh down.
//
// Tests that break their cluster on purpose (restarting a component) use
// Private(t), a cluster of their own, so that tests running at the same time
// against the shared cluster are not disturbed.
//
// Under `go test -short` every test that asks for a cluster is skipped with a
// message. Otherwise a cluster that cannot be started fails the test.
package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ScriptPath is where the cluster script lives, relative to the repository
// root (found by walking up from the test's working directory).
const ScriptPath = "test/cluster/cluster.sh"

// TestLabel is set to "true" on every namespace this package creates.
const TestLabel = "codex-k8s.dev/clustertest"

const (
	// A cold `up` builds the control plane from source first.
	upTimeout       = 45 * time.Minute
	scriptTimeout   = 5 * time.Minute
	readyTimeout    = 10 * time.Second
	namespaceWait   = time.Minute
	cleanupTimeout  = 30 * time.Second
	privateNodes    = "2"
	namespacePrefix = 40
)

// Cluster is a running control plane and clients for it. The clients are
// safe for concurrent use; Config must not be modified (copy it with
// rest.CopyConfig).
type Cluster struct {
	// Name is "" for the shared cluster, else the CLUSTER_NAME of a private one.
	Name string
	// Kubeconfig is the absolute path of the cluster's kubeconfig (for
	// kubectl or a CLI under test); it never is ~/.kube/config.
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface

	script string
}

// Env is what one test works with: a cluster and a namespace of its own.
type Env struct {
	*Cluster
	Namespace string
}

var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// New returns the shared cluster and a fresh namespace, deleted in
// t.Cleanup. It skips the test under -short and fails it when no cluster
// can be started.
func New(t testing.TB) *Env {
	t.Helper()
	c := Shared(t)
	return &Env{Cluster: c, Namespace: c.NewNamespace(t)}
}

// Shared returns the shared cluster, starting it when none runs. It skips
// the test under -short and fails it when no cluster can be started.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	skipShort(t)
	shared.once.Do(func() {
		shared.cluster, shared.err = ensureShared(t)
	})
	if shared.err != nil {
		t.Fatalf("clustertest: no cluster: %v", shared.err)
	}
	return shared.cluster
}

// Private starts a cluster for this test alone (CLUSTER_NAME=t-<random>,
// two nodes, its own ports) and stops it in t.Cleanup; its logs are kept
// when the test failed. Use it for tests that restart components.
func Private(t testing.TB) *Cluster {
	t.Helper()
	skipShort(t)
	script, err := findScript()
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	c := &Cluster{Name: "t-" + randomSuffix(8), script: script}
	t.Logf("clustertest: starting private cluster %s", c.Name)
	start := time.Now()
	// Registered before `up`, so that a failed start is stopped too.
	t.Cleanup(func() {
		args := []string{"down", "--purge"}
		if t.Failed() {
			args = []string{"down"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
		defer cancel()
		if out, err := c.run(ctx, args...); err != nil {
			t.Errorf("clustertest: stopping private cluster %s: %v\n%s", c.Name, err, out)
		} else if t.Failed() {
			t.Logf("clustertest: logs of private cluster %s:\n%s", c.Name, lastLines(out, 1))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	out, err := c.run(ctx, "up")
	if err != nil {
		t.Fatalf("clustertest: %s up (CLUSTER_NAME=%s) failed: %v\n%s", ScriptPath, c.Name, err, lastLines(out, 40))
	}
	if err := c.connect(lastLines(out, 1)); err != nil {
		t.Fatalf("clustertest: private cluster %s: %v", c.Name, err)
	}
	t.Logf("clustertest: private cluster %s ready in %s", c.Name, time.Since(start).Round(time.Second))
	return c
}

// Restart stops and starts one component of a private cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler or kwok) and
// returns once it is healthy again.
func (c *Cluster) Restart(t testing.TB, component string) {
	t.Helper()
	if c.Name == "" {
		t.Fatalf("clustertest: Restart(%q) on the shared cluster: other tests use it at the same time; use clustertest.Private(t)", component)
	}
	ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
	defer cancel()
	if out, err := c.run(ctx, "restart", component); err != nil {
		t.Fatalf("clustertest: %s restart %s (CLUSTER_NAME=%s): %v\n%s", ScriptPath, component, c.Name, err, lastLines(out, 30))
	}
}

// NewNamespace creates a namespace named after the test, waits until pods
// can be created in it (its default ServiceAccount exists) and deletes it
// in t.Cleanup, without waiting for the deletion to finish.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        namespaceName(t.Name()),
		Labels:      map[string]string{TestLabel: "true"},
		Annotations: map[string]string{"codex-k8s.dev/test": t.Name()},
	}}
	created, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("clustertest: creating namespace %s: %v", ns.Name, err)
	}
	name := created.Name
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("clustertest: deleting namespace %s: %v", name, err)
		}
	})
	WaitFor(t, namespaceWait, "the default ServiceAccount in namespace "+name, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	return name
}

// WaitFor calls cond every 100ms, from now, until it returns true; an error
// from cond, the timeout or the end of the test fails the test, naming what
// was awaited.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	start := time.Now()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, time.Since(start).Round(time.Millisecond), err)
	}
}

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping integration test under -short: it needs the real cluster of %s", ScriptPath)
	}
}

// ensureShared returns the running shared cluster, or starts it under a
// file lock (a second test binary waits, then finds it running).
func ensureShared(t testing.TB) (*Cluster, error) {
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	c := &Cluster{script: script}
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	// `kubeconfig` prints the path even when the cluster does not exist yet.
	out, _ := c.run(ctx, "kubeconfig")
	kubeconfig := lastLines(out, 1)
	if !filepath.IsAbs(kubeconfig) {
		return nil, fmt.Errorf("%s kubeconfig printed %q, not an absolute path", ScriptPath, kubeconfig)
	}
	if c.connect(kubeconfig) == nil && c.ready(ctx) == nil {
		return c, nil
	}

	lockPath := filepath.Join(filepath.Dir(filepath.Dir(kubeconfig)), "clustertest.lock")
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	defer unlock()
	if c.connect(kubeconfig) == nil && c.ready(ctx) == nil {
		return c, nil // another test binary started it meanwhile
	}
	t.Logf("clustertest: no cluster running; starting one with %s up (a cold build takes minutes)", ScriptPath)
	start := time.Now()
	out, err = c.run(ctx, "up")
	if err != nil {
		return nil, fmt.Errorf("%s up failed: %w\n%s", ScriptPath, err, lastLines(out, 40))
	}
	if err := c.connect(lastLines(out, 1)); err != nil {
		return nil, err
	}
	if err := c.ready(ctx); err != nil {
		return nil, fmt.Errorf("cluster started but not ready: %w", err)
	}
	t.Logf("clustertest: cluster ready in %s", time.Since(start).Round(time.Second))
	return c, nil
}

// connect builds the clients from a kubeconfig file.
func (c *Cluster) connect(kubeconfig string) error {
	if _, err := os.Stat(kubeconfig); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	// Tests create many objects quickly; the default 5 QPS would throttle them.
	cfg.QPS, cfg.Burst = 100, 200
	cfg.UserAgent = "codex-bootstrap-clustertest"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Kubeconfig, c.Config, c.Client, c.Dynamic = kubeconfig, cfg, client, dyn
	return nil
}

// ready: the API server is ready and at least one node is Ready.
func (c *Cluster) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("API server not ready: %w", err)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
	}
	return errors.New("no node is Ready")
}

// run runs cluster.sh for this cluster and returns its stdout and stderr
// together (stdout's last line is the kubeconfig path for up/kubeconfig).
func (c *Cluster) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.script, args...)
	// Later entries win over the inherited ones.
	cmd.Env = append(os.Environ(), "CLUSTER_NAME="+c.Name)
	if c.Name != "" {
		// A port base set for the shared cluster must not be reused: a
		// private cluster takes the first free range.
		cmd.Env = append(cmd.Env, "CLUSTER_NODES="+privateNodes, "CLUSTER_PORT_BASE=")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stderr.String() + stdout.String(), err
}

// findScript walks up from the working directory (a package directory
// under `go test`) to the repository root that holds the cluster script.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ScriptPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory", ScriptPath)
		}
		dir = parent
	}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceName: the test's name made DNS-safe and short, plus a random
// suffix so that reruns and parallel tests never collide.
func namespaceName(test string) string {
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(base) > namespacePrefix {
		base = strings.TrimRight(base[:namespacePrefix], "-")
	}
	if base == "" {
		base = "test"
	}
	return base + "-" + randomSuffix(5)
}

func randomSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)[:n]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
