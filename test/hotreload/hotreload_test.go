// Package hotreload_test proves hot reload on real pods: the example stack
// (examples/new-project) reconciled as ai-slots on the shared cluster's
// real node, its sources synced with `codex-bootstrap sync`, then edits
// seen by the running services (air for Go, Vite's dev server with HMR for
// the frontend), by agent-run pods, and by neither slot of the other.
// Run with
//
//	go test ./test/hotreload -run HotReload -v
package hotreload_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// reloadTimeout bounds one edit's way to a new response (seconds at
// worst on a loaded machine; the benchmarks measure it).
const reloadTimeout = 90 * time.Second

func TestHotReloadOnRealPods(t *testing.T) {
	c := clustertest.Shared(t)
	node := c.RealNode(t)
	a := newSlot(t, c, node, "hr")
	b := newSlot(t, c, node, "hs")
	// Both slots at once: their first builds overlap.
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.edit(t, "catalog/hello.go", "hello from catalog", "hello from slot B")
		b.deploy(t)
	}()
	a.deploy(t)
	<-done
	if t.Failed() {
		return
	}
	a.watch(t)
	catalog := "http://" + a.podIP(t, "catalog") + ":8080"
	storefront := "http://" + a.podIP(t, "storefront") + ":3000"

	t.Run("go handler edit changes the response", func(t *testing.T) {
		waitBody(t, reloadTimeout, catalog+"/api/hello", "hello from catalog")
		a.edit(t, "catalog/hello.go", "hello from catalog", "hello again from catalog")
		waitBody(t, reloadTimeout, catalog+"/api/hello", "hello again from catalog")
	})

	t.Run("frontend module edit is served with an HMR update", func(t *testing.T) {
		hmr := dialHMR(t, storefront)
		// The browser's requests: the modules join Vite's module graph.
		waitBody(t, reloadTimeout, storefront+"/src/main.js", "message.js")
		waitBody(t, reloadTimeout, storefront+"/src/message.js", "Welcome to the shop")
		a.edit(t, "storefront/src/message.js", "Welcome to the shop", "Sale: everything half price")
		update := hmr.next(t, "update")
		if !strings.Contains(update, "/src/message.js") {
			t.Errorf("HMR update does not name /src/message.js: %s", update)
		}
		waitBody(t, reloadTimeout, storefront+"/src/message.js", "Sale: everything half price")
	})

	t.Run("agent-run pod writes and the service reloads", func(t *testing.T) {
		spec := slotWorkspace(t, a)
		products := `[{"id": "agent-made", "name": "Made by an agent", "price": 1}]`
		out := runAgent(t, a, node, spec, "agent", "write", spec.MountPath+"/catalog/products.json", products)
		if !strings.Contains(out, "wrote") {
			t.Fatalf("agent pod: %s", out)
		}
		waitBody(t, reloadTimeout, catalog+"/api/products", "agent-made")
	})

	t.Run("second slot sees none of the first one's files", func(t *testing.T) {
		other := "http://" + b.podIP(t, "catalog") + ":8080"
		if body, err := get(other + "/api/hello"); err != nil || !strings.Contains(body, "hello from slot B") {
			t.Errorf("slot B /api/hello = %q, %v; want its own source", body, err)
		}
		if body, err := get(other + "/api/products"); err != nil || strings.Contains(body, "agent-made") || !strings.Contains(body, "mug") {
			t.Errorf("slot B /api/products = %q, %v; want the example's products only", body, err)
		}
		out := runAgent(t, b, node, slotWorkspace(t, b), "agent-b", "cat", "/src/catalog/hello.go", "/src/storefront/src/message.js")
		if strings.Contains(out, "hello again") || strings.Contains(out, "Sale:") || !strings.Contains(out, "hello from slot B") {
			t.Errorf("slot B's workspace holds slot A's edits:\n%s", out)
		}
	})

	t.Run("prod renders neither dev command nor workspace", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "prod")
		if code, out := a.run(t.Context(), "reconcile", "--config", exampleStack, "--env", "prod", "--dry-run", "--output-dir", dir); code != 0 {
			t.Fatalf("dry run of prod: exit %d\n%s", code, out)
		}
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			for _, bad := range []string{"air", "vite", "persistentVolumeClaim", "claimName", "workspace", "go-dev", "node-dev"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("prod manifest %s contains %q", filepath.Base(p), bad)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// slotWorkspace is the slot's workspace as the library gives it to a
// platform worker.
func slotWorkspace(t testing.TB, s *slot) workspace.Spec {
	t.Helper()
	prj, err := servicescfg.Open(exampleStack, servicescfg.Options{LookupEnv: func(k string) (string, bool) { v, ok := s.env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := prj.Plan(t.Context(), servicescfg.Target{Env: "ai-slot", Slot: s.name}, servicescfg.IdentityOnly())
	if err != nil {
		t.Fatal(err)
	}
	spec, err := workspace.FromPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// runAgent runs testbox as an agent-run pod of the slot (the workspace
// through workspace.PodMount, on the real node) and returns its log.
func runAgent(t *testing.T, s *slot, node *clustertest.RealNode, spec workspace.Spec, name string, args ...string) string {
	t.Helper()
	grace := int64(1)
	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		TerminationGracePeriodSeconds: &grace,
		Containers:                    []corev1.Container{{Name: "agent", Image: node.Image(t, "testbox"), ImagePullPolicy: corev1.PullNever, Args: args}},
	}
	workspace.PodMount(spec).Apply(&pod)
	node.Place(&pod)
	pods := s.cluster.Client.CoreV1().Pods(s.ns)
	if _, err := pods.Create(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pod}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, time.Minute, "agent pod "+name+" done", func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
	})
	out, err := pods.GetLogs(name, &corev1.PodLogOptions{}).DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// hmrConn is a connection to Vite's HMR websocket, as the browser's client
// opens it.
type hmrConn struct {
	conn *websocket.Conn
	msgs chan string
}

var wsToken = regexp.MustCompile(`wsToken = "([^"]+)"`)

func dialHMR(t testing.TB, base string) *hmrConn {
	t.Helper()
	client, err := get(base + "/@vite/client")
	if err != nil {
		t.Fatalf("Vite's client: %v", err)
	}
	url := "ws" + strings.TrimPrefix(base, "http") + "/"
	if m := wsToken.FindStringSubmatch(client); m != nil {
		url += "?token=" + m[1]
	}
	d := websocket.Dialer{Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: 5 * time.Second}
	conn, res, err := d.DialContext(t.Context(), url, http.Header{})
	if err != nil {
		t.Fatalf("HMR websocket %s: %v (%v)", url, err, res)
	}
	h := &hmrConn{conn: conn, msgs: make(chan string, 64)}
	go func() {
		defer close(h.msgs)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			h.msgs <- string(b)
		}
	}()
	t.Cleanup(func() { conn.Close() })
	h.next(t, "connected")
	return h
}

// next returns the next message of a type, skipping others (pings).
func (h *hmrConn) next(t testing.TB, typ string) string {
	t.Helper()
	deadline := time.After(reloadTimeout)
	for {
		select {
		case m, ok := <-h.msgs:
			if !ok {
				t.Fatalf("HMR websocket closed before a %q message", typ)
			}
			var v struct{ Type string }
			if json.Unmarshal([]byte(m), &v) == nil && v.Type == typ {
				return m
			}
			if v.Type == "full-reload" || v.Type == "error" {
				t.Logf("HMR message while waiting for %q: %s", typ, m)
			}
		case <-deadline:
			t.Fatalf("no HMR %q message within %s", typ, reloadTimeout)
		}
	}
}

// TestSyncRefusesMissingSlot: a slot that was never reconciled has no
// namespace; sync says so and what to run, and creates nothing.
func TestSyncRefusesMissingSlot(t *testing.T) {
	c := clustertest.Shared(t)
	name := randomName("none")
	s := &slot{name: name, ns: "shopfront-dev-" + name, src: t.TempDir(), cluster: c, toolbox: "unused",
		env: map[string]string{"KUBECONFIG": c.Kubeconfig}}
	code, out := s.sync(t.Context())
	want := fmt.Sprintf("slot %s of environment ai-slot does not exist", name)
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "run reconcile --env ai-slot --slot "+name+" first") {
		t.Fatalf("exit %d\n%s\nwant exit 1 and %q", code, out, want)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(t.Context(), s.ns, metav1.GetOptions{}); err == nil {
		t.Errorf("sync created namespace %s", s.ns)
	}
}
