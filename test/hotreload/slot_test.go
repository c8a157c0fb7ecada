package hotreload_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/internal/cli"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// The example stack, from this package's folder.
const (
	exampleDir   = "../../examples/new-project"
	exampleStack = exampleDir + "/services.yaml"
	// A first build compiles net/http's part of the standard library into
	// an empty cache: about a minute on a busy two-core machine.
	readyTimeout = 5 * time.Minute
)

// slot is one ai-slot of the example stack deployed on the real node, with
// its own copy of the sources.
type slot struct {
	name, ns string
	src      string // the local tree synced into the workspace
	env      map[string]string
	cluster  *clustertest.Cluster
	toolbox  string
}

func randomName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newSlot prepares a slot of a unique name (shared cluster: other tests
// deploy the example too) and a copy of the example's sources; the
// namespace is deleted at the end.
func newSlot(t testing.TB, c *clustertest.Cluster, node *clustertest.RealNode, prefix string) *slot {
	t.Helper()
	s := &slot{name: randomName(prefix), cluster: c, toolbox: node.Image(t, "toolbox")}
	s.ns = "shopfront-dev-" + s.name
	s.src = filepath.Join(t.TempDir(), "src")
	if err := os.CopyFS(s.src, os.DirFS(filepath.Join(exampleDir, "src"))); err != nil {
		t.Fatal(err)
	}
	// The operator's settings for this cluster: dev images built by
	// test/images, hot-reloading pods on the real node, local volumes.
	s.env = map[string]string{
		"KUBECONFIG":                             c.Kubeconfig,
		"CODEX_VAR_SHOP_GO_DEV_IMAGE":            node.Image(t, "go-dev"),
		"CODEX_VAR_SHOP_NODE_DEV_IMAGE":          node.Image(t, "node-dev"),
		"CODEX_VAR_SHOP_DEV_NODE_LABEL":          clustertest.RealNodeKey,
		"CODEX_VAR_SHOP_WORKSPACE_STORAGE_CLASS": clustertest.RealNodeStorageClass,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.Client.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", s.ns, err)
		}
	})
	return s
}

// run runs codex-bootstrap with the slot's environment variables.
func (s *slot) run(ctx context.Context, args ...string) (int, string) {
	var out bytes.Buffer
	w := &syncWriter{w: &out}
	f := &cli.Factory{
		IO: cli.IOStreams{In: strings.NewReader(""), Out: w, ErrOut: w},
		LookupEnv: func(k string) (string, bool) {
			v, ok := s.env[k]
			return v, ok
		},
	}
	code := cli.Run(ctx, f, args)
	return code, w.String()
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// deploy reconciles the slot and syncs its sources while the reconcile
// waits for the services (they become ready once their sources are
// there), as a developer does in two terminals.
func (s *slot) deploy(t testing.TB) {
	t.Helper()
	ctx := t.Context()
	done := make(chan string, 1)
	go func() {
		code, out := s.run(ctx, "reconcile", "--config", exampleStack, "--env", "ai-slot", "--slot", s.name, "--timeout", readyTimeout.String())
		if code != 0 {
			out = fmt.Sprintf("exit %d\n%s", code, out)
		} else {
			out = ""
		}
		done <- out
	}()
	// The sync starts once catalog's container runs (a developer who
	// starts it late): the services wait for their sources, and the
	// folders the sync creates are the workspace owner's.
	clustertest.WaitFor(t, 2*time.Minute, "a running catalog container in "+s.ns, func(ctx context.Context) (bool, error) {
		pods, err := s.cluster.Client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=catalog"})
		if err != nil {
			return false, nil // the namespace may not exist yet
		}
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if code, out := s.sync(ctx); code != 0 {
		t.Fatalf("sync of slot %s: exit %d\n%s", s.name, code, out)
	}
	if failed := <-done; failed != "" {
		t.Fatalf("reconcile of slot %s: %s", s.name, failed)
	}
}

// sync runs one sync of the slot's tree.
func (s *slot) sync(ctx context.Context, extra ...string) (int, string) {
	args := append([]string{"sync", "--config", exampleStack, "--env", "ai-slot", "--slot", s.name, "--helper-image", s.toolbox}, extra...)
	return s.run(ctx, append(args, s.src)...)
}

// watch runs sync --watch until the test ends.
func (s *slot) watch(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var out string
	go func() {
		defer close(done)
		_, out = s.sync(ctx, "--watch")
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		t.Logf("sync --watch of slot %s:\n%s", s.name, out)
	})
}

// podIP is the address of the ready pod of a service.
func (s *slot) podIP(t testing.TB, service string) string {
	t.Helper()
	var ip string
	clustertest.WaitFor(t, readyTimeout, service+" ready in "+s.ns, func(ctx context.Context) (bool, error) {
		pods, err := s.cluster.Client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + service})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && podReady(&p) {
				ip = p.Status.PodIP
				return true, nil
			}
		}
		return false, nil
	})
	return ip
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// edit replaces old by new in a file of the slot's tree, as an editor
// saves it (a new file renamed over the old one).
func (s *slot) edit(t testing.TB, rel, old, new string) {
	t.Helper()
	p := filepath.Join(s.src, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", rel, old)
	}
	tmp := p + ".swp~"
	if err := os.WriteFile(tmp, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(url string) (string, error) {
	res, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return string(b), nil
}

// waitBody waits until GET url answers with want in its body.
func waitBody(t testing.TB, timeout time.Duration, url, want string) {
	t.Helper()
	clustertest.WaitFor(t, timeout, fmt.Sprintf("GET %s with %q", url, want), func(ctx context.Context) (bool, error) {
		body, err := get(url)
		return err == nil && strings.Contains(body, want), nil
	})
}
