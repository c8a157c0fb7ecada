package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

// installStack copies testdata/install to a folder of the test's, with a
// config.env holding content, and returns its services.yaml.
func installStack(t *testing.T, content string) string {
	t.Helper()
	dst := t.TempDir()
	copyTree(t, "testdata/install", dst)
	if content != "" {
		if err := os.WriteFile(filepath.Join(dst, "bootstrap/host/config.env"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "services.yaml")
}

// copyTree copies the files under src to dst, keeping their modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// installRun runs a command line with a home folder of its own and answers
// from prompter (nil: no terminal).
type installRun struct {
	home     string
	prompter Prompter
	env      map[string]string
}

func newInstallRun(t *testing.T) *installRun {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &installRun{home: home, env: map[string]string{"HOME": home, "USER": "operator"}}
}

func (r *installRun) run(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := r.runWith(ctx, &out, &errOut, args...)
	return code, out.String(), errOut.String()
}

// runWith runs a command line writing to out and errOut as it goes.
func (r *installRun) runWith(ctx context.Context, out, errOut io.Writer, args ...string) int {
	ios := IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
	ios.SetStdinTTY(r.prompter != nil)
	ios.SetStderrTTY(r.prompter != nil)
	ios.SetStdoutTTY(false)
	f := &Factory{IO: ios, Prompter: r.prompter, LookupEnv: func(k string) (string, bool) { v, ok := r.env[k]; return v, ok }}
	return Run(ctx, f, args)
}

func (r *installRun) trust(t *testing.T, h *sshhost.Host) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(r.home, ".ssh", "known_hosts"), []byte(h.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hostConfig(h *sshhost.Host, user string) string {
	return "# the server\nDEMO_SSH_HOST=" + h.IP + "\nDEMO_SSH_USER=" + user + "\nDEMO_SSH_KEY=" + h.ClientKeyFile +
		"\nDEMO_DOMAIN=demo.example\n# keep this comment\nDEMO_TOKEN=canary-token-0123456789\n"
}

func eventStatuses(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct{ Node, Status, Phase string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		out = append(out, e.Node+":"+e.Status)
	}
	return out
}

func TestInstallRunsTheStepsOnARealHost(t *testing.T) {
	h := sshhost.Start(t)
	stack := installStack(t, hostConfig(h, sshhost.UserSudo))
	r := newInstallRun(t)
	r.trust(t, h)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--events", events)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"[prepare-host] workspace owner codex", "[prepare-host] demo tool ran", "[use-token] token stored", "bootstrap steps done"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if got := strings.Join(eventStatuses(t, events), " "); got != "prepare-host:started prepare-host:ready use-token:started use-token:ready cluster:started cluster:ready" {
		t.Errorf("events: %s", got)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, "canary-token") {
			t.Errorf("the secret shows in the output:\n%s", out)
		}
	}
	if b, err := os.ReadFile(h.Path("/etc/demo-domain")); err != nil || string(b) != "demo.example\n" {
		t.Errorf("/etc/demo-domain: %q %v", b, err)
	}

	code, _, stderr = r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--events", events)
	if code != 0 || !strings.Contains(stderr, "skipped  prepare-host (finished, unchanged)") {
		t.Errorf("second install: exit %d\n%s", code, stderr)
	}
	if got := strings.Join(eventStatuses(t, events), " "); got != "prepare-host:skipped use-token:skipped cluster:skipped" {
		t.Errorf("events of the second install: %s", got)
	}
	code, _, _ = r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--only", "use-token", "--events", events)
	if got := strings.Join(eventStatuses(t, events), " "); code != 0 || got != "prepare-host:skipped use-token:started use-token:ready cluster:skipped" {
		t.Errorf("--only: exit %d, events %s", code, got)
	}
}

func TestInstallRefusesBeforeAnyStep(t *testing.T) {
	h := sshhost.Start(t)
	t.Run("unknown host key without a terminal", func(t *testing.T) {
		r := newInstallRun(t)
		stack := installStack(t, hostConfig(h, "root"))
		code, _, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy")
		if code != 1 || !strings.Contains(stderr, "is unknown") || !strings.Contains(stderr, "--host-key SHA256:") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		// Pinned, it is accepted and recorded.
		pin := strings.TrimRight(strings.Fields(stderr[strings.Index(stderr, "--host-key SHA256:"):])[1], ",")
		code, _, stderr = r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--host-key", pin)
		if code != 0 {
			t.Fatalf("pinned: exit %d\n%s", code, stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(r.home, ".ssh", "known_hosts")); !strings.HasPrefix(string(b), h.IP+" ") {
			t.Errorf("known_hosts: %q", b)
		}
	})
	t.Run("user without passwordless sudo", func(t *testing.T) {
		r := newInstallRun(t)
		r.trust(t, h)
		stack := installStack(t, hostConfig(h, sshhost.UserNoSudo))
		code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy")
		if code != 1 || !strings.Contains(stderr, "cannot use sudo without a password") || strings.Contains(stdout, "[prepare-host]") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	t.Run("flags beat the config file", func(t *testing.T) {
		r := newInstallRun(t)
		r.trust(t, h)
		stack := installStack(t, strings.Replace(hostConfig(h, sshhost.UserNoSudo), h.IP, "127.0.0.1", 1))
		code, _, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--host", h.IP, "--user", "root", "--only", "use-token")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
	})
}

func TestInstallMissingValuesWithoutATerminal(t *testing.T) {
	content := "# operator values\nDEMO_SSH_HOST=192.0.2.1\n"
	stack := installStack(t, content)
	r := newInstallRun(t)
	code, _, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"2 required values are missing", "DEMO_DOMAIN: Public DNS name.", "DEMO_TOKEN (secret): API token."} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")); string(b) != content {
		t.Errorf("config.env changed: %q", b)
	}
}

// answers is a Prompter with scripted answers, keyed by the start of the
// question.
type answers struct {
	replies []string
	asked   []string
	hidden  []bool
}

func (a *answers) next(q string, hidden bool) (string, error) {
	a.asked, a.hidden = append(a.asked, q), append(a.hidden, hidden)
	if len(a.replies) == 0 {
		return "", context.Canceled
	}
	r := a.replies[0]
	a.replies = a.replies[1:]
	return r, nil
}

func (a *answers) Confirm(_ context.Context, q string, _ bool) (bool, error) {
	r, err := a.next(q, false)
	return r == "y", err
}
func (a *answers) Input(_ context.Context, q, _ string) (string, error) { return a.next(q, false) }
func (a *answers) Password(_ context.Context, q string) (string, error) { return a.next(q, true) }

func TestInstallAsksForMissingValues(t *testing.T) {
	// Port 1 of loopback refuses at once: nothing leaves the machine.
	content := "# operator values\nDEMO_SSH_HOST=127.0.0.1\nDEMO_SSH_PORT=1\nUNKNOWN_KEY=kept\n"
	stack := installStack(t, content)
	r := newInstallRun(t)
	a := &answers{replies: []string{"Not A Domain", "demo.example", "", "s3cret"}}
	r.prompter = a
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--dry-run")
	// A dry run asks nothing: it lists what is missing.
	if code != 1 || len(a.asked) != 0 {
		t.Fatalf("dry run: exit %d, asked %v\n%s", code, a.asked, stderr)
	}
	code, stdout, stderr = r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--only", "nope")
	if len(a.asked) != 4 || !a.hidden[3] || a.hidden[0] || !strings.Contains(a.asked[1], "does not match the pattern") || !strings.Contains(a.asked[3], "is required") {
		t.Fatalf("questions %q hidden %v", a.asked, a.hidden)
	}
	cfg := filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := content + "DEMO_DOMAIN=demo.example\nDEMO_TOKEN=s3cret\n"; string(b) != want {
		t.Errorf("config.env:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.env mode %v", st.Mode())
	}
	// The answers were saved before the connection was tried.
	if code != 1 || !strings.Contains(stderr, "connect to 127.0.0.1:1") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Interrupted at the secret question: the file is left as it was.
	stack = installStack(t, content)
	r.prompter = &answers{replies: []string{"demo.example"}}
	code, _, _ = r.run(context.Background(), "install", "--config", stack, "--no-deploy")
	if code != ExitInterrupt {
		t.Errorf("interrupted: exit %d", code)
	}
	if b, _ := os.ReadFile(filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")); string(b) != content {
		t.Errorf("config.env changed by an interrupted install: %q", b)
	}
}

func TestInstallDryRunContactsNothing(t *testing.T) {
	stack := installStack(t, "DEMO_SSH_HOST=192.0.2.1\nDEMO_DOMAIN=demo.example\nDEMO_TOKEN=x\n")
	r := newInstallRun(t)
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--env", "dev", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := `install demo on operator@192.0.2.1:22
bootstrap steps, in order:
  1. prepare-host  vars: DEMO_DOMAIN  files: tool.sh
  2. use-token (timeout 1m0s)  vars: DEMO_TOKEN
  3. cluster  files: kubeconfig
then deploy environment dev into namespace demo-dev (1 nodes) through the SSH connection
`
	// DEMO_SSH_USER's declared default (root) comes after ~/.ssh/config,
	// which here says nothing; the default wins over the current user.
	want = strings.Replace(want, "operator@", "root@", 1)
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

// TestInstallThroughProxyJump: the server's ~/.ssh/config entry names a
// jump host (itself an entry there, with its own user): install connects
// through it, and a jump host whose key is unknown is refused even when the
// server's key is pinned.
func TestInstallThroughProxyJump(t *testing.T) {
	h := sshhost.Start(t)
	stack := installStack(t, "DEMO_SSH_HOST=staging\nDEMO_DOMAIN=demo.example\nDEMO_TOKEN=canary-token-0123456789\n")
	r := newInstallRun(t)
	r.trust(t, h)
	sshConfig := "Host staging\n  HostName " + h.IP + "\n  User root\n  IdentityFile " + h.ClientKeyFile + "\n  ProxyJump jumper\n" +
		"Host jumper\n  HostName " + h.IP + "\n  User " + sshhost.UserSudo + "\n  IdentityFile " + h.ClientKeyFile + "\n"
	if err := os.WriteFile(filepath.Join(r.home, ".ssh", "config"), []byte(sshConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--no-deploy")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if want := "connecting to root@" + h.Addr + " through " + sshhost.UserSudo + "@" + h.Addr; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if !strings.Contains(stdout, "bootstrap steps done") {
		t.Errorf("stdout:\n%s", stdout)
	}

	if err := os.WriteFile(filepath.Join(r.home, ".ssh", "known_hosts"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pin := ssh.FingerprintSHA256(h.HostKeys[0].PublicKey())
	code, _, stderr = r.run(context.Background(), "install", "--config", stack, "--no-deploy", "--host-key", pin)
	if code != 1 || !strings.Contains(stderr, "jump host "+h.Addr+" (ProxyJump of "+h.IP+")") || !strings.Contains(stderr, "ssh "+h.IP+" once") {
		t.Errorf("unknown jump host key: exit %d\n%s", code, stderr)
	}
}
