package remote_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

const project = "demo"

// env is one test host and what a test needs to reach it.
type env struct {
	h          *sshhost.Host
	knownHosts string
}

// newEnv starts a host whose key is already in a known_hosts file.
func newEnv(t *testing.T, opts ...sshhost.Option) *env {
	t.Helper()
	h := sshhost.Start(t, opts...)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(h.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{h: h, knownHosts: kh}
}

func (e *env) config(user string) remote.Config {
	return remote.Config{
		Target:     remote.Target{Host: e.h.IP, Port: 22, User: user, IdentityFiles: []string{e.h.ClientKeyFile}},
		KnownHosts: e.knownHosts,
	}
}

func (e *env) dial(t *testing.T, user string) *remote.Client {
	t.Helper()
	c, err := remote.Dial(context.Background(), e.config(user))
	if err != nil {
		t.Fatalf("dial %s as %s: %v", e.h.Addr, user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder keeps the output and the events of runs.
type recorder struct {
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	events         bytes.Buffer
	lines          []string
	seen           chan string
}

func newRecorder() *recorder { return &recorder{seen: make(chan string, 1000)} }

type lockedWriter struct {
	r *recorder
	b *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		select {
		case w.r.seen <- l:
		default:
		}
	}
	return w.b.Write(p)
}

func (r *recorder) options(sel remote.Selection) remote.RunOptions {
	return remote.RunOptions{
		Project: project, Selection: sel,
		Stdout: lockedWriter{r, &r.stdout}, Stderr: lockedWriter{r, &r.stderr},
		Observer: apply.NewJSONLines(lockedWriter{r, &r.events}),
	}
}

// statuses lists "step:status" of the events written since the last call.
func (r *recorder) statuses(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(r.events.String()), "\n") {
		if l == "" {
			continue
		}
		var e struct{ Node, Group, Phase, Status string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		if e.Group != "bootstrap" || e.Phase != "bootstrap" {
			t.Errorf("event %q: group and phase should be bootstrap", l)
		}
		out = append(out, e.Node+":"+e.Status)
	}
	r.events.Reset()
	return out
}

// waitLine waits until a line of output contains s.
func (r *recorder) waitLine(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-r.seen:
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no output line with %q", s)
		}
	}
}

func step(name, script string, vars ...remote.Var) remote.Step {
	return remote.Step{Name: name, Script: []byte("set -euo pipefail\n" + script + "\n"), Vars: vars}
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func hostFile(t *testing.T, h *sshhost.Host, p string) string {
	t.Helper()
	b, err := os.ReadFile(h.Path(p))
	if err != nil {
		t.Fatalf("read %s on the host: %v", p, err)
	}
	return string(b)
}

// strays lists the host's processes other than sshd: what a step left.
// noStrays waits a little for the host to have nothing but sshd running.
func noStrays(t *testing.T, h *sshhost.Host) {
	t.Helper()
	left, err := h.Strays(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("processes left on the host: %v", left)
	}
}

func TestStepsRunInOrderAndResume(t *testing.T) {
	e := newEnv(t)
	steps := []remote.Step{
		step("prepare-host", `useradd --create-home codex; echo "user $(id -un codex)"; echo "to stderr" >&2`),
		step("configure", `printf '%s\n' "$DOMAIN" > /etc/demo-domain; echo "domain set"`, remote.Var{Name: "DOMAIN", Value: "example.test"}),
		{Name: "with-files", Script: []byte("set -e\ncmp files/bin/tool /dev/stdin <<<'tool'\nstat -c %a files/bin/tool\ncat files/notes.txt\ninstall -m 0755 files/bin/tool /usr/local/bin/tool\n"),
			Files: []remote.File{{Name: "bin/tool", Mode: 0o755, Data: []byte("tool\n")}, {Name: "notes.txt", Path: writeTemp(t, "a note\n")}}},
	}
	rec := newRecorder()
	c := e.dial(t, "root")
	res, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{}))
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, rec.stdout.String(), rec.stderr.String())
	}
	if len(res) != 3 {
		t.Fatalf("results: %+v", res)
	}
	equal(t, "events", rec.statuses(t), []string{"prepare-host:started", "prepare-host:ready", "configure:started", "configure:ready", "with-files:started", "with-files:ready"})
	for _, want := range []string{"[prepare-host] user codex\n", "[configure] domain set\n", "[with-files] 755\n", "[with-files] a note\n"} {
		if !strings.Contains(rec.stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, rec.stdout.String())
		}
	}
	if !strings.Contains(rec.stderr.String(), "[prepare-host] to stderr\n") {
		t.Errorf("stderr: %q", rec.stderr.String())
	}
	if got := hostFile(t, e.h, "/etc/demo-domain"); got != "example.test\n" {
		t.Errorf("/etc/demo-domain: %q", got)
	}
	for _, s := range steps {
		marker := e.h.Path(remote.StateDir + "/" + project + "/steps/" + s.Name)
		st, err := os.Stat(marker)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("marker of %s: %v %v", s.Name, st, err)
		}
	}
	if st, err := os.Stat(e.h.Path(remote.StateDir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state folder: %v %v", st, err)
	}
	if _, err := os.Stat(e.h.Path(remote.StateDir + "/" + project + "/run/with-files")); !os.IsNotExist(err) {
		t.Errorf("the step's upload folder was left: %v", err)
	}

	// Again on the same connection: nothing to do.
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{})); err != nil {
		t.Fatal(err)
	}
	equal(t, "events of a re-run", rec.statuses(t), []string{"prepare-host:skipped", "configure:skipped", "with-files:skipped"})

	// A changed input runs that step and the ones after it.
	steps[1].Vars[0].Value = "example.org"
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{})); err != nil {
		t.Fatal(err)
	}
	equal(t, "events after a change", rec.statuses(t), []string{"prepare-host:skipped", "configure:started", "configure:ready", "with-files:started", "with-files:ready"})

	// --only and --from run finished steps again.
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{Only: []string{"with-files"}})); err != nil {
		t.Fatal(err)
	}
	equal(t, "events of only", rec.statuses(t), []string{"prepare-host:skipped", "configure:skipped", "with-files:started", "with-files:ready"})
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{From: "configure"})); err != nil {
		t.Fatal(err)
	}
	equal(t, "events of from", rec.statuses(t), []string{"prepare-host:skipped", "configure:started", "configure:ready", "with-files:started", "with-files:ready"})
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{From: "nope"})); err == nil || !strings.Contains(err.Error(), "prepare-host, configure, with-files") {
		t.Errorf("unknown --from: %v", err)
	}
	noStrays(t, e.h)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFailedStepStopsAndReportsItsOutput(t *testing.T) {
	e := newEnv(t)
	rec := newRecorder()
	steps := []remote.Step{
		step("one", "echo first"),
		step("two", "echo about to fail; echo reason >&2; exit 3"),
		step("three", "echo never"),
	}
	c := e.dial(t, "root")
	_, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{}))
	var se *remote.StepError
	if !errors.As(err, &se) || se.Step != "two" || se.ExitCode != 3 {
		t.Fatalf("want step two failing with 3, got %v", err)
	}
	if !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "about to fail") || !strings.Contains(err.Error(), "reason") {
		t.Errorf("error lacks the exit code or last lines: %v", err)
	}
	equal(t, "events", rec.statuses(t), []string{"one:started", "one:ready", "two:started", "two:failed"})
	if strings.Contains(rec.stdout.String(), "never") {
		t.Error("a step after the failed one ran")
	}
	// The fixed step runs again; the finished one is skipped.
	steps[1] = step("two", "echo fixed")
	if _, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{})); err != nil {
		t.Fatal(err)
	}
	equal(t, "events of the re-run", rec.statuses(t), []string{"one:skipped", "two:started", "two:ready", "three:started", "three:ready"})
}

// The connection is cut while a step runs (its sshd killed on the host):
// the step's whole process group goes, and a new install resumes at it.
func TestCutConnectionResumesAtTheStep(t *testing.T) {
	e := newEnv(t)
	steps := []remote.Step{
		step("first", "echo first > /root/first.log"),
		step("slow", `if [ -f /root/cut-once ]; then echo resumed; exit 0; fi
touch /root/cut-once
sleep 300 &
( sleep 301 ) &
echo waiting
sleep 302`),
		step("last", "echo last"),
	}
	rec := newRecorder()
	c := e.dial(t, "root")
	errc := make(chan error, 1)
	go func() {
		_, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{}))
		errc <- err
	}()
	rec.waitLine(t, "[slow] waiting")
	if n, err := e.h.KillConnections(); err != nil || n == 0 {
		t.Fatalf("cut: %d %v", n, err)
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(60 * time.Second):
		t.Fatal("install did not notice the cut connection")
	}
	if !errors.Is(err, remote.ErrConnectionLost) {
		t.Fatalf("want a lost connection, got %v", err)
	}
	if !strings.Contains(err.Error(), "step slow") || !strings.Contains(err.Error(), "resume at slow") {
		t.Errorf("error: %v", err)
	}
	equal(t, "events", rec.statuses(t), []string{"first:started", "first:ready", "slow:started", "slow:failed"})
	noStrays(t, e.h)

	c2 := e.dial(t, "root")
	if _, err := remote.Run(context.Background(), c2, steps, rec.options(remote.Selection{})); err != nil {
		t.Fatalf("re-run: %v\n%s", err, rec.stderr.String())
	}
	equal(t, "events of the re-run", rec.statuses(t), []string{"first:skipped", "slow:started", "slow:ready", "last:started", "last:ready"})
	if !strings.Contains(rec.stdout.String(), "[slow] resumed") {
		t.Errorf("stdout: %s", rec.stdout.String())
	}
	noStrays(t, e.h)
}

func TestTimeoutAndCancelKillTheStepsGroup(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, "root")
	rec := newRecorder()
	slow := step("slow", "sleep 300 & echo started; sleep 301")
	slow.Timeout = 2 * time.Second
	_, err := remote.Run(context.Background(), c, []remote.Step{slow}, rec.options(remote.Selection{}))
	var se *remote.StepError
	if !errors.As(err, &se) || se.Timeout != 2*time.Second || !strings.Contains(err.Error(), "timed out after 2s") {
		t.Fatalf("want a timeout, got %v", err)
	}
	noStrays(t, e.h)
	if _, err := os.Stat(e.h.Path(remote.StateDir + "/" + project + "/steps/slow")); !os.IsNotExist(err) {
		t.Errorf("a timed-out step left a marker: %v", err)
	}

	slow.Timeout = 0
	rec = newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := remote.Run(ctx, c, []remote.Step{slow}, rec.options(remote.Selection{}))
		errc <- err
	}()
	rec.waitLine(t, "[slow] started")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancelled, got %v", err)
	}
	noStrays(t, e.h)
	// The connection still serves the next install.
	if _, err := remote.Run(context.Background(), c, []remote.Step{step("after", "true")}, rec.options(remote.Selection{})); err != nil {
		t.Fatal(err)
	}
}

func TestNonRootUser(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, sshhost.UserSudo)
	if !c.Sudo() {
		t.Error("a non-root user should go through sudo")
	}
	rec := newRecorder()
	if _, err := remote.Run(context.Background(), c, []remote.Step{step("whoami", `echo "uid $(id -u)"`)}, rec.options(remote.Selection{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.stdout.String(), "[whoami] uid 0") {
		t.Errorf("stdout: %s", rec.stdout.String())
	}

	_, err := remote.Dial(context.Background(), e.config(sshhost.UserNoSudo))
	var se *remote.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("want a sudo error before any step, got %v", err)
	}
	for _, want := range []string{"user bob", "without a password", "password is required", "NOPASSWD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("sudo error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(e.h.Path(remote.StateDir + "/" + project + "/steps/whoami")); err != nil {
		t.Errorf("marker: %v", err)
	}
}

func runLocal(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestDialThroughProxyJump connects through a jump host (the test host
// itself: the second hop is dialled from inside it, so the server sees the
// connection come from its own address), with both host keys checked.
func TestDialThroughProxyJump(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := e.config("root")
	cfg.Target.ProxyJump = e.h.IP
	cfg.Target.Jumps = []remote.Target{{Host: e.h.IP, Port: 22, User: sshhost.UserSudo, IdentityFiles: []string{e.h.ClientKeyFile}}}
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial through the jump host: %v", err)
	}
	out, err := c.Command(ctx, `echo "$SSH_CONNECTION"`, nil)
	_ = c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if from := strings.Fields(string(out)); len(from) != 4 || from[0] != e.h.IP {
		t.Errorf("the server saw the connection from %q, want from the jump host %s", out, e.h.IP)
	}

	// The jump host's key is checked too: unknown and no terminal fails,
	// even with the server's key pinned (a pin names the server's key).
	empty := filepath.Join(t.TempDir(), "known_hosts")
	cfg.KnownHosts = empty
	cfg.HostKeyPin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, err = remote.Dial(ctx, cfg)
	var unknown *remote.UnknownHostKeyError
	var jump *remote.JumpHostError
	if !errors.As(err, &unknown) || !errors.As(err, &jump) || !strings.Contains(err.Error(), "jump host "+e.h.Addr) {
		t.Fatalf("unknown jump host key: got %v", err)
	}
}
