package cli

import (
	"bytes"
	"context"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

const (
	repoRoot = "../.."
	// platformCanary is the GitHub token install is given: it must reach
	// the cluster's Secret and nothing else.
	platformCanary = "ghp_canary-platform-0123456789abcdef"
	// nodePort is the port the test cluster step forwards to the pod, as
	// kube-proxy does for a NodePort Service.
	nodePort = 30080
)

// overlay is one edit a test makes to a copied services.yaml: old must
// occur exactly once.
type overlay struct{ old, new string }

// copyStack copies the files of a stack (services.yaml and the folders it
// reads) to a folder of the test's, applies the overlays to its
// services.yaml, and returns that file.
func copyStack(t *testing.T, root string, dirs []string, overlays ...overlay) string {
	t.Helper()
	dst := t.TempDir()
	for _, d := range dirs {
		copyTree(t, filepath.Join(root, d), filepath.Join(dst, d))
	}
	data, err := os.ReadFile(filepath.Join(root, "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, o := range overlays {
		if n := strings.Count(text, o.old); n != 1 {
			t.Fatalf("overlay of %s: %q occurs %d times, want once", root, o.old, n)
		}
		text = strings.Replace(text, o.old, o.new, 1)
	}
	path := filepath.Join(dst, "services.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// platformStack copies the platform's stack with the test's overlay. The
// host has no internet, so a step of the overlay, stage-k3s, stages what
// an operator would for an air-gapped install-k3s (testdata/platform: a k3s
// and an installer that stand in for the real ones, and a systemctl for a
// host without systemd); the staging namespace is the test's, and the
// workspace uid/gid one the test host does not use yet (its uid 1000 is a
// test user). Every step of the platform runs as written, install-k3s too.
//
// Without env (install --no-deploy), the kubeconfig names a cluster that is
// not there and staging keeps its own namespace.
func platformStack(t *testing.T, h *sshhost.Host, env *clustertest.Env, pod *sshhost.Pod) string {
	t.Helper()
	overlays := []overlay{
		{"uid: 1000\n        gid: 1000\n        fsGroup: 1000", "uid: 2000\n        gid: 2000\n        fsGroup: 2000"},
		{"      - name: install-k3s\n", "      - name: stage-k3s\n        script: test/stage-k3s.sh\n" +
			"        files: [test/k3s, test/install.sh, test/kubeconfig, test/systemctl]\n      - name: install-k3s\n"},
	}
	if env != nil {
		overlays = append(overlays, overlay{`namespaceTemplate: "{{ .Project }}-staging"`, `namespaceTemplate: "` + env.Namespace + `"`})
	}
	stack := copyStack(t, repoRoot, []string{"deploy", "bootstrap/remote"}, overlays...)
	dir := filepath.Dir(stack)
	copyTree(t, "testdata/platform", filepath.Join(dir, "test"))
	installer := filepath.Join(dir, "test/install.sh")
	b, err := os.ReadFile(installer)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.NewReplacer("NODEPORT", strconv.Itoa(nodePort), "POD", pod.IP).Replace(string(b)))
	if err := os.WriteFile(installer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if env != nil {
		writeRelayedKubeconfig(t, h, env, filepath.Join(dir, "test/kubeconfig"))
	} else if err := os.WriteFile(filepath.Join(dir, "test/kubeconfig"), []byte(noCluster), 0o600); err != nil {
		t.Fatal(err)
	}
	config := "# the server\nCODEXK8S_SSH_HOST=" + h.IP + "\nCODEXK8S_SSH_USER=" + sshhost.UserSudo +
		"\nCODEXK8S_DOMAIN=platform.example.test\n# keep this comment\nCODEXK8S_GITHUB_PAT=" + platformCanary +
		"\nCODEXK8S_LETSENCRYPT_EMAIL=ops@example.test\n"
	if err := os.MkdirAll(filepath.Join(dir, "bootstrap/host"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap/host/config.env"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return stack
}

// noCluster is a kubeconfig for installs that deploy nothing.
const noCluster = `apiVersion: v1
kind: Config
clusters:
- name: none
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: none
  context: {cluster: none, user: none}
current-context: none
users:
- name: none
  user: {}
`

// writeRelayedKubeconfig writes the cluster's kubeconfig with its server
// at a relay on the host's veth peer: from inside the host, where its
// cluster answers. It returns the relay's address and its count of
// connections.
func writeRelayedKubeconfig(t *testing.T, h *sshhost.Host, env *clustertest.Env, path string) (string, *atomic.Int64) {
	t.Helper()
	apiURL, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	relay, relayed := forward(t, h.Peer, apiURL.Host)
	kc, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = "https://" + relay
		c.TLSServerName = apiURL.Hostname()
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return relay, relayed
}

// TestInstallPlatformAndNewProject installs the platform's own stack on a
// clean test host with its own steps (k3s itself is staged as test doubles:
// no internet there, see platformStack), deploys staging through the SSH connection, checks from
// another network namespace that only SSH, 80 and 443 answer, then installs
// examples/new-project on the same server, as an operator would.
func TestInstallPlatformAndNewProject(t *testing.T) {
	env := clustertest.New(t)
	cleanupWorkerSlots(t, env)
	h := sshhost.Start(t)
	prober := h.Prober(t)
	pod := h.Pod(t)
	pod.Listen(t, 8080)
	for _, addr := range []string{":80", ":443", ":6443"} {
		h.Listen(t, addr) // the ingress and the API server, as k3s would
	}
	if !prober.Answers(6443, 2*time.Second) {
		t.Fatal("before install, the API port does not answer from outside: the check below would prove nothing")
	}
	stack := platformStack(t, h, env, pod)
	r := newInstallRun(t)
	r.trust(t, h)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--env", "staging", "-i", h.ClientKeyFile, "--events", events)
	if code != 0 {
		t.Fatalf("install: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	steps := "prepare-host:started prepare-host:ready firewall:started firewall:ready stage-k3s:started stage-k3s:ready install-k3s:started install-k3s:ready " +
		"configure-registry:started configure-registry:ready install-cert-manager:started install-cert-manager:ready finalize:started finalize:ready"
	if got := strings.Join(eventStatuses(t, events), " "); !strings.HasPrefix(got, steps+" ") {
		t.Errorf("events:\n%s\nwant first:\n%s", got, steps)
	}
	checkPlatformHost(t, h, stdout+stderr)
	checkPlatformDeployed(t, env)
	checkPorts(t, prober, map[int]bool{22: true, 80: true, 443: true, 6443: false, nodePort: false})
	checkNoCanary(t, platformCanary, stdout, stderr, readFile(t, events), h.Upper())

	// Without the firewall the API port and the NodePort answer: the
	// check above saw the firewall at work, not a cluster that was not
	// there. --only runs the step again, and they are closed again.
	if _, err := h.Exec(context.Background(), "nft delete table inet codex-k8s-firewall"); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, prober, map[int]bool{6443: true, nodePort: true})
	code, stdout, stderr = r.run(context.Background(), "install", "--config", stack, "-i", h.ClientKeyFile, "--no-deploy", "--only", "firewall")
	if code != 0 {
		t.Fatalf("install --only firewall: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	checkPorts(t, prober, map[int]bool{22: true, 80: true, 443: true, 6443: false, nodePort: false})

	// A second install skips every finished, unchanged step.
	events2 := filepath.Join(t.TempDir(), "events.jsonl")
	code, stdout, stderr = r.run(context.Background(), "install", "--config", stack, "--env", "staging", "-i", h.ClientKeyFile, "--events", events2)
	if code != 0 {
		t.Fatalf("second install: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	skipped := "prepare-host:skipped firewall:skipped stage-k3s:skipped install-k3s:skipped configure-registry:skipped install-cert-manager:skipped finalize:skipped"
	if got := strings.Join(eventStatuses(t, events2), " "); !strings.HasPrefix(got, skipped+" ") {
		t.Errorf("second install events:\n%s\nwant first:\n%s", got, skipped)
	}

	t.Run("new-project", func(t *testing.T) { installNewProject(t, h, env, r) })
}

// checkPlatformHost: what the platform's steps did on the host.
func checkPlatformHost(t *testing.T, h *sshhost.Host, output string) {
	t.Helper()
	for _, want := range []string{"[prepare-host] installing curl iptables nftables conntrack socat", "[prepare-host] created user codex",
		"[firewall] rules applied", "[install-k3s] installing k3s v1.33.4+k3s1 (found: none)",
		"[install-k3s] k3s v1.33.4+k3s1 is running", "[configure-registry] registry mirror changed: restarting k3s",
		"[finalize] cluster:   k3s v1.33.4+k3s1", "[finalize] firewall:  table inet codex-k8s-firewall: 22,80,443 open"} {
		if !strings.Contains(output, want) {
			t.Errorf("output lacks %q:\n%s", want, output)
		}
	}
	for script, want := range map[string]string{
		"dpkg-query -W -f='${Package} ${Status}\\n' nftables socat conntrack": "conntrack install ok installed\nnftables install ok installed\nsocat install ok installed\n",
		"id -u codex; id -g codex":                          "2000\n2000\n",
		"stat -c '%a %U' /var/lib/codex-k8s/install-report": "600 root\n",
		"ls /var/lib/rancher/k3s/server/manifests":          "codex-k8s-cert-manager.yaml\ncodex-k8s-cluster-issuer.yaml\ncodex-k8s-registry.yaml\n",
		"grep -A1 tls-san: /etc/rancher/k3s/config.yaml":    "tls-san:\n  - platform.example.test\n",
		"cat /var/log/systemctl-test-double.log":            "systemctl enable --now k3s\nsystemctl is-active --quiet k3s\nsystemctl restart k3s\n",
		"grep -c registry.local /etc/hosts":                 "1\n",
		"ls /var/lib/codex-bootstrap/codex-k8s/steps":       "configure-registry\nfinalize\nfirewall\ninstall-cert-manager\ninstall-k3s\nprepare-host\nstage-k3s\n",
	} {
		if out, err := h.Exec(context.Background(), script); err != nil || out != want {
			t.Errorf("%s: %q, %v; want %q", script, out, err, want)
		}
	}
}

// checkPlatformDeployed: staging was reconciled through the SSH connection.
func checkPlatformDeployed(t *testing.T, env *clustertest.Env) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Client.AppsV1().Deployments(env.Namespace).Get(ctx, "control-plane", metav1.GetOptions{}); err != nil {
		t.Errorf("staging was not deployed: %v", err)
	}
	s, err := env.Client.CoreV1().Secrets(env.Namespace).Get(ctx, "platform-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("staging was not deployed: %v", err)
	}
	if string(s.Data["GITHUB_PAT"]) != platformCanary {
		t.Error("the GitHub token from config.env did not reach the platform's Secret")
	}
}

// checkPorts: which of the host's ports answer from outside.
func checkPorts(t *testing.T, p *sshhost.Prober, want map[int]bool) {
	t.Helper()
	for port, open := range want {
		if got := p.Answers(port, 2*time.Second); got != open {
			t.Errorf("port %d answers from another network namespace: %v, want %v", port, got, open)
		}
	}
}

// checkNoCanary: the secret is in no output and no file the host kept.
func checkNoCanary(t *testing.T, canary string, outputs ...string) {
	t.Helper()
	upper := outputs[len(outputs)-1]
	for i, o := range outputs[:len(outputs)-1] {
		if strings.Contains(o, canary) {
			t.Errorf("output %d holds the secret", i)
		}
	}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(canary)) {
			t.Errorf("the host kept the secret in %s", strings.TrimPrefix(p, upper))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// installNewProject installs examples/new-project on the server the
// platform runs on: its own step, then its dev environment through SSH.
func installNewProject(t *testing.T, h *sshhost.Host, env *clustertest.Env, r *installRun) {
	ns := env.NewNamespace(t)
	stack := copyStack(t, filepath.Join(repoRoot, "examples/new-project"), []string{"bootstrap", "k8s", "templates"},
		overlay{`namespaceTemplate: "{{ .Project }}-dev"`, `namespaceTemplate: "` + ns + `"`})
	events := filepath.Join(t.TempDir(), "events.jsonl")
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--env", "dev",
		"--host", h.IP, "--user", sshhost.UserSudo, "-i", h.ClientKeyFile, "--events", events)
	if code != 0 {
		t.Fatalf("install: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := strings.Join(eventStatuses(t, events), " "); !strings.HasPrefix(got, "tune-node:started tune-node:ready ") {
		t.Errorf("events: %s", got)
	}
	if out, err := h.Exec(context.Background(), "cat /etc/sysctl.d/60-shopfront-watchers.conf; ls /var/lib/codex-bootstrap/shopfront/steps"); err != nil ||
		out != "fs.inotify.max_user_watches = 524288\nfs.inotify.max_user_instances = 1024\ntune-node\n" {
		t.Errorf("tune-node on the host: %q, %v", out, err)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Get(context.Background(), "shopfront-redis", metav1.GetOptions{}); err != nil {
		t.Errorf("new-project's dev was not deployed: %v", err)
	}
}

// lineWatch keeps what is written to it and closes hit once it holds want.
type lineWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	hit  chan struct{}
	once sync.Once
}

func newLineWatch(want string) *lineWatch { return &lineWatch{want: want, hit: make(chan struct{})} }

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.hit) })
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestInstallPlatformResumesAfterACutDuringApt cuts the connection while
// prepare-host's apt-get is unpacking packages (as a network failure
// would): nothing of the step survives on the host, and install again
// resumes at prepare-host, which first finishes what dpkg left half done.
func TestInstallPlatformResumesAfterACutDuringApt(t *testing.T) {
	h := sshhost.Start(t)
	stack := platformStack(t, h, nil, h.Pod(t))
	r := newInstallRun(t)
	r.trust(t, h)
	args := []string{"install", "--config", stack, "-i", h.ClientKeyFile, "--no-deploy", "--events"}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	out, errOut := newLineWatch("[prepare-host] Unpacking"), newLineWatch("")
	done := make(chan int, 1)
	go func() { done <- r.runWith(context.Background(), out, errOut, append(args, events)...) }()
	select {
	case <-out.hit:
	case code := <-done:
		t.Fatalf("install ended (exit %d) before apt unpacked anything\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	case <-time.After(3 * time.Minute):
		t.Fatal("apt did not start unpacking")
	}
	if n, err := h.KillConnections(); err != nil || n == 0 {
		t.Fatalf("cut: %d %v", n, err)
	}
	select {
	case code := <-done:
		if code != 1 || !strings.Contains(errOut.String(), "step prepare-host was cut off") {
			t.Errorf("exit %d\nstderr:\n%s", code, errOut)
		}
	case <-time.After(time.Minute):
		t.Fatal("install did not notice the cut connection")
	}
	if got := strings.Join(eventStatuses(t, events), " "); got != "prepare-host:started prepare-host:failed" {
		t.Errorf("events: %s", got)
	}
	if left, err := h.Strays(15 * time.Second); err != nil || len(left) > 0 {
		t.Fatalf("the cut step left processes on the host: %v %v", left, err)
	}

	events2 := filepath.Join(t.TempDir(), "events.jsonl")
	code, stdout, stderr := r.run(context.Background(), append(args, events2)...)
	if code != 0 {
		t.Fatalf("install again: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := strings.Join(eventStatuses(t, events2), " "); !strings.HasPrefix(got, "prepare-host:started prepare-host:ready firewall:started firewall:ready") {
		t.Errorf("events of the second install: %s", got)
	}
	if out, err := h.Exec(context.Background(), "dpkg --audit; dpkg-query -W -f='${Status}\\n' curl iptables nftables conntrack socat | sort -u"); err != nil || out != "install ok installed\n" {
		t.Errorf("packages after the second install: %q %v", out, err)
	}
}

// cleanupWorkerSlots deletes, when the test ends, the cluster-scoped
// objects the platform stack's worker-slots node names after the namespace
// it deployed into (the slot-deployer ClusterRole, one for every
// environment, stays).
func cleanupWorkerSlots(t *testing.T, env *clustertest.Env) {
	t.Cleanup(func() {
		ctx := context.Background()
		name := env.Namespace + "-worker-slots"
		for what, del := range map[string]func() error{
			"ClusterRole": func() error { return env.Client.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}) },
			"ClusterRoleBinding": func() error {
				return env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
			},
			"ValidatingAdmissionPolicy": func() error {
				return env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
			},
			"ValidatingAdmissionPolicyBinding": func() error {
				return env.Client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
			},
		} {
			if err := del(); err != nil && !apierrors.IsNotFound(err) {
				t.Logf("delete %s %s: %v", what, name, err)
			}
		}
	})
}
