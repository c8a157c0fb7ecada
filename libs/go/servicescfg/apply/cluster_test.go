package apply_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// repoRoot is the repository root, from this package's folder.
var repoRoot = func() string {
	abs, err := filepath.Abs("../../../..")
	if err != nil {
		panic(err)
	}
	return abs
}()

// testCluster returns the shared local test cluster's config
// (test/clustertest: started under a file lock when none runs; the test is
// skipped under -short).
func testCluster(t *testing.T) *rest.Config {
	t.Helper()
	return rest.CopyConfig(clustertest.Shared(t).Config)
}

func kubeconfigPath(t *testing.T) string {
	t.Helper()
	return clustertest.Shared(t).Kubeconfig
}

// kubectlPath is the kubectl that cluster.sh built, wherever its cache is.
func kubectlPath() string {
	cache := os.Getenv("CODEX_CACHE_DIR")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache", "codex-bootstrap")
	}
	return filepath.Join(cache, "cluster", "bin", "kubectl")
}

// uniquePrefix keeps each test's namespaces apart from other runs.
func uniquePrefix(t *testing.T) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "it" + hex.EncodeToString(b)
}

// testValues supplies every bootstrap variable of both stacks.
var testValues = map[string]string{
	"CODEXK8S_SSH_HOST":   "127.0.0.1",
	"CODEXK8S_DOMAIN":     "codex.example.test",
	"CODEXK8S_GITHUB_PAT": "ghp_test-token-never-printed-0123456789",
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[strings.TrimPrefix(k, config.EnvPrefix)]; return v, ok }
}

// loadPlan loads a stack and plans one environment, its namespaces prefixed
// so that every test deploys into namespaces of its own.
func loadPlan(t *testing.T, path, env, slot, prefix string, vars map[string]string) (*plan.Plan, *config.Values) {
	t.Helper()
	s, err := stack.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	for _, e := range s.Spec.Environments {
		if e.NamespaceTemplate != "" {
			e.NamespaceTemplate = prefix + "-" + e.NamespaceTemplate
		}
	}
	if vars == nil {
		vars = testValues
	}
	values := config.Resolve(s, nil, lookup(vars))
	p, err := plan.Build(context.Background(), s, plan.Options{Env: env, Slot: slot, Config: values.NonSecret()})
	if err != nil {
		t.Fatalf("plan %s %s: %v", path, env, err)
	}
	return p, values
}

// eventLine is one line of the events file.
type eventLine struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Group    string    `json:"group"`
	Phase    string    `json:"phase"`
	Status   string    `json:"status"`
	Objects  []string  `json:"objects"`
	Duration float64   `json:"duration"`
	Message  string    `json:"message"`
}

// run reconciles p, recording events as the CLI's --events file would.
func run(t *testing.T, ctx context.Context, cfg *rest.Config, p *plan.Plan, opts apply.Options) (*apply.Result, []eventLine, error) {
	t.Helper()
	var buf bytes.Buffer
	jl := apply.NewJSONLines(&buf)
	if opts.Observer != nil {
		opts.Observer = apply.Observers{jl, opts.Observer}
	} else {
		opts.Observer = jl
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	res, err := apply.Reconcile(ctx, cfg, p, opts)
	var events []eventLine
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ev eventLine
		if jerr := json.Unmarshal(l, &ev); jerr != nil {
			t.Fatalf("events line %q: %v", l, jerr)
		}
		events = append(events, ev)
	}
	return res, events, err
}

// cleanup deletes the namespaces when the test ends.
func cleanup(t *testing.T, cfg *rest.Config, namespaces ...string) {
	t.Helper()
	c, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("KEEP_NAMESPACES") != "" {
			return
		}
		for _, ns := range namespaces {
			err := c.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Logf("delete namespace %s: %v", ns, err)
			}
		}
	})
}

// writeStack writes a stack and its manifests into a temporary folder.
func writeStack(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "services.yaml")
}

// waitingFor returns an observer and a channel closed when node starts
// waiting for readiness: the moment to interrupt or contend with a run.
func waitingFor(node string) (apply.Observer, <-chan struct{}) {
	waiting := make(chan struct{})
	var once sync.Once
	return apply.ObserverFunc(func(e apply.Event) {
		if e.Node == node && e.Phase == apply.PhaseWait && e.Status == apply.StatusStarted {
			once.Do(func() { close(waiting) })
		}
	}), waiting
}

// fixture is a stack in a temporary folder, planned for dev into a
// namespace of its own on the shared cluster: the setup most behaviour
// tests share.
type fixture struct {
	t       *testing.T
	cleaned bool // the namespace's removal is registered
	cfg     *rest.Config
	c       *apply.Clients
	ctx     context.Context
	dir     string
	path    string
	prefix  string
}

// newFixture writes a stack whose services are nodes (see stackYAML),
// with files beside it.
func newFixture(t *testing.T, nodes string, files map[string]string) *fixture {
	t.Helper()
	cfg := testCluster(t)
	c, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, cfg: cfg, c: c, ctx: context.Background(), dir: t.TempDir(), prefix: uniquePrefix(t)}
	f.write(map[string]string{"services.yaml": stackYAML(nodes, "")})
	f.write(files)
	return f
}

// write adds or replaces files of the stack.
func (f *fixture) write(files map[string]string) { f.path = writeStack(f.t, f.dir, files) }

// remove deletes a file of the stack (slash-separated, relative to it).
func (f *fixture) remove(name string) {
	mustRemove(f.t, filepath.Join(f.dir, filepath.FromSlash(name)))
}

// plan plans dev as the files stand now; the namespace goes when the test
// ends.
func (f *fixture) plan() (*plan.Plan, *config.Values) {
	f.t.Helper()
	p, values := loadPlan(f.t, f.path, "dev", "", f.prefix, nil)
	if !f.cleaned {
		cleanup(f.t, f.cfg, p.Namespace)
		f.cleaned = true
	}
	return p, values
}

// reconcile plans dev and applies it.
func (f *fixture) reconcile(opts apply.Options) (*plan.Plan, *apply.Result, []eventLine, error) {
	f.t.Helper()
	p, values := f.plan()
	if opts.Values == nil {
		opts.Values = values
	}
	res, events, err := run(f.t, f.ctx, f.cfg, p, opts)
	return p, res, events, err
}
