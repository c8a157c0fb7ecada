package workspace_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// gitServer serves a bare repository over git's "dumb" HTTP protocol
// (plain files) on the real node's bridge, behind basic authentication
// with a token, and records what it was asked.
type gitServer struct {
	url   string
	token string

	mu       sync.Mutex
	requests []string // URL of each request, and "auth" when it carried the token
	denied   int
}

func newGitServer(t *testing.T) *gitServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "shop.git")
	gitRun(t, "", "init", "-q", "-b", "main", work)
	if err := os.MkdirAll(filepath.Join(work, "catalog"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "catalog", "README"), []byte("catalog sources from git\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, work, "add", ".")
	gitRun(t, work, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "first")
	gitRun(t, "", "clone", "-q", "--bare", work, bare)
	gitRun(t, bare, "update-server-info")

	b := make([]byte, 16)
	_, _ = rand.Read(b)
	g := &gitServer{token: "tok-" + hex.EncodeToString(b)}
	// The bridge address of the real node: pods reach this machine there.
	ln, err := net.Listen("tcp", "10.248.0.1:0")
	if err != nil {
		t.Fatalf("listening on the real node's bridge: %v", err)
	}
	files := http.StripPrefix("/shop.git", http.FileServer(http.Dir(bare)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pass, ok := r.BasicAuth()
		g.mu.Lock()
		rec := r.URL.String()
		if ok && pass == g.token {
			rec += " auth"
		}
		g.requests = append(g.requests, rec)
		if !ok || pass != g.token {
			g.denied++
			g.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		g.mu.Unlock()
		files.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	g.url = "http://" + ln.Addr().String() + "/shop.git"
	return g
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// sourceStack is a stack whose workspace is filled from git: the claim,
// then a Job of the real node that reads a cloned file.
func sourceStack(t *testing.T, ns, url string, node *clustertest.RealNode) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"services.yaml": fmt.Sprintf(`apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: gitsource}
spec:
  project: gitsource
  vars: {testImage: %[3]q, realNodeKey: %[4]q}
  environments:
    dev: {runtime: non-prod, namespaceTemplate: %[1]s}
  runtime:
    non-prod:
      hotReload: true
      workspace:
        mountPath: /src
        uid: 1000
        gid: 1000
        fsGroup: 1000
        storageClass: %[5]s
        source: {git: %[2]q, ref: main, credentialsSecret: git-token, image: %[6]q}
  infrastructure:
    - name: workspace
      manifests: [pvc.yaml]
  services:
    - name: reader
      manifests: [reader.yaml]
  secrets:
    - name: git-token
      data:
        token: {fromConfig: GIT_TOKEN}
  bootstrap:
    variables:
      - {name: GIT_TOKEN, secret: true, required: true}
`, ns, url, node.Image(t, "testbox"), clustertest.RealNodeKey, clustertest.RealNodeStorageClass, node.Image(t, "toolbox")),
		"pvc.yaml": `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: workspace}
spec:
  storageClassName: {{ .Runtime.Workspace.StorageClass }}
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`,
		"reader.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: reader}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      nodeSelector: {'{{ .Vars.realNodeKey }}': "true"}
      tolerations: [{key: '{{ .Vars.realNodeKey }}', operator: Equal, value: "true", effect: NoSchedule}]
      securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
      volumes: [{name: src, persistentVolumeClaim: {claimName: workspace}}]
      containers:
        - name: reader
          image: '{{ .Vars.testImage }}'
          imagePullPolicy: Never
          args: [cat, /src/catalog/README]
          volumeMounts: [{name: src, mountPath: /src}]
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "services.yaml")
}

// TestRealWorkspaceSourceClonesBeforeServices: reconcile fills the
// workspace from a git repository that needs a token, before the service
// that reads it starts; the token is in no pod spec, argument, environment
// or log.
func TestRealWorkspaceSourceClonesBeforeServices(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	git := newGitServer(t)
	if err := deploySource(t, env, git, git.token); err != nil {
		t.Fatalf("reconcile: %v\nrequests: %v", err, git.requests)
	}
	ctx := t.Context()
	jobPods, err := env.Client.CoreV1().Pods(env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=reader"})
	if err != nil || len(jobPods.Items) == 0 {
		t.Fatalf("reader pods: %v, %v", jobPods, err)
	}
	out, err := env.Client.CoreV1().Pods(env.Namespace).GetLogs(jobPods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || string(out) != "catalog sources from git\n" {
		t.Fatalf("the service read %q, %v; want the cloned file", out, err)
	}
	helper, err := env.Client.CoreV1().Pods(env.Namespace).Get(ctx, workspace.HelperName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if helper.Spec.NodeName != clustertest.RealNodeName {
		t.Errorf("helper ran on %q, want the services' node %s", helper.Spec.NodeName, clustertest.RealNodeName)
	}
	spec, _ := json.Marshal(helper)
	clone, err := env.Client.CoreV1().Pods(env.Namespace).GetLogs(workspace.HelperName, &corev1.PodLogOptions{Container: "clone"}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"the helper pod": string(spec), "the clone's log": string(clone)} {
		if strings.Contains(text, git.token) {
			t.Errorf("%s holds the token", what)
		}
	}
	if !strings.Contains(string(clone), "cloned "+git.url+" at main") {
		t.Errorf("clone log: %q", clone)
	}
	git.mu.Lock()
	defer git.mu.Unlock()
	authed := 0
	for _, r := range git.requests {
		if strings.HasSuffix(r, " auth") {
			authed++
		}
	}
	if git.denied == 0 || authed == 0 {
		t.Errorf("the server denied %d and served %d authenticated requests, want both: %v", git.denied, authed, git.requests)
	}
}

// TestRealWorkspaceSourceWrongToken: a token the server refuses fails the
// reconcile at the workspace node with git's own words, the token in none
// of them, and the services are not started.
func TestRealWorkspaceSourceWrongToken(t *testing.T) {
	t.Parallel()
	env := clustertest.New(t)
	git := newGitServer(t)
	err := deploySource(t, env, git, "wrong-"+git.token)
	if err == nil {
		t.Fatal("reconcile with a wrong token succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"cloning " + git.url, "init container clone failed", "Authentication failed", "skipped: reader"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, git.token) {
		t.Errorf("error holds the token:\n%s", msg)
	}
}

// deploySource reconciles sourceStack with token as the operator's
// GIT_TOKEN.
func deploySource(t *testing.T, env *clustertest.Env, git *gitServer, token string) error {
	t.Helper()
	path := sourceStack(t, env.Namespace, git.url, env.RealNode(t))
	lookup := func(k string) (string, bool) { return token, k == "CODEX_VAR_GIT_TOKEN" }
	_, err := apply.Deploy(t.Context(), env.Config, apply.Target{Path: path, Env: "dev", LookupEnv: lookup}, apply.Options{})
	return err
}
