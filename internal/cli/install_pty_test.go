//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

// terminal is a pseudo-terminal an install runs on, and what it showed.
type terminal struct {
	ptmx, tty *os.File
	mu        sync.Mutex
	screen    strings.Builder
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	term := &terminal{ptmx: ptmx, tty: tty}
	t.Cleanup(func() { _ = ptmx.Close(); _ = tty.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.screen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return term
}

func (term *terminal) shown() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.screen.String()
}

func (term *terminal) echo(t *testing.T) bool {
	tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// answer waits for a question and types the answer.
func (term *terminal) answer(t *testing.T, question, answer string) {
	t.Helper()
	waitFor(t, func() bool { return strings.Contains(term.shown(), question) }, "the question "+question)
	if _, err := term.ptmx.Write([]byte(answer + "\n")); err != nil {
		t.Fatal(err)
	}
}

// start runs the command on the terminal; its exit code arrives on the
// channel.
func (term *terminal) start(ctx context.Context, r *installRun, args ...string) <-chan int {
	code := make(chan int, 1)
	go func() {
		ios := IOStreams{In: term.tty, Out: term.tty, ErrOut: term.tty}
		f := &Factory{IO: ios, LookupEnv: func(k string) (string, bool) { v, ok := r.env[k]; return v, ok }}
		code <- Run(ctx, f, args)
	}()
	return code
}

// succeed waits until the command started exits 0.
func (term *terminal) succeed(t *testing.T, code <-chan int, within time.Duration) {
	t.Helper()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d\n%s", c, term.shown())
		}
	case <-time.After(within):
		t.Fatalf("install did not finish:\n%s", term.shown())
	}
}

// TestInstallOnARealTerminal: an install with an incomplete config.env on a
// real pty asks the missing values (the secret without echo), saves them
// with the file's comments, confirms the unknown host key, and runs the
// steps; Ctrl-C at the secret question leaves the file as it was.
func TestInstallOnARealTerminal(t *testing.T) {
	h := sshhost.Start(t)
	content := "# the server\nDEMO_SSH_HOST=" + h.IP + "\nDEMO_SSH_KEY=" + h.ClientKeyFile + "\n# keep this comment\n"
	stack := installStack(t, content)
	cfg := filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")
	r := newInstallRun(t)

	term := newTerminal(t)
	code := term.start(context.Background(), r, "install", "--config", stack, "--no-deploy")
	term.answer(t, "DEMO_DOMAIN", "demo.example")
	waitFor(t, func() bool { return strings.Contains(term.shown(), "DEMO_TOKEN") && !term.echo(t) }, "the hidden secret question")
	term.answer(t, "DEMO_TOKEN", "pty-canary-secret")
	term.answer(t, "Trust it and continue?", "y")
	term.succeed(t, code, 60*time.Second)
	screen := term.shown()
	if strings.Contains(screen, "pty-canary-secret") {
		t.Errorf("the secret was shown:\n%s", screen)
	}
	if !strings.Contains(screen, "[use-token] token stored") {
		t.Errorf("the steps did not run:\n%s", screen)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := content + "DEMO_DOMAIN=demo.example\nDEMO_TOKEN=pty-canary-secret\n"; string(b) != want {
		t.Errorf("config.env:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.env mode %v", st.Mode())
	}

	// Ctrl-C (the context ends, as on SIGINT) at the secret question.
	stack = installStack(t, content)
	cfg = filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")
	interruptAt(t, r, []string{"install", "--config", stack, "--no-deploy"},
		[][2]string{{"DEMO_DOMAIN", "demo.example"}}, "DEMO_TOKEN", true, cfg, content)
}

// interruptAt runs install on a new terminal, answers each question of
// answers (the text to wait for, then the answer), ends the context (as
// SIGINT does) once question is shown (and the terminal no longer echoes,
// when hidden), and checks the exit code, the terminal's echo and that cfg
// still holds content.
func interruptAt(t *testing.T, r *installRun, args []string, answers [][2]string, question string, hidden bool, cfg, content string) {
	t.Helper()
	term := newTerminal(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := term.start(ctx, r, args...)
	for _, a := range answers {
		term.answer(t, a[0], a[1])
	}
	waitFor(t, func() bool { return strings.Contains(term.shown(), question) && (!hidden || !term.echo(t)) }, "the question "+question)
	cancel()
	if c := <-code; c != ExitInterrupt {
		t.Errorf("exit %d, want %d", c, ExitInterrupt)
	}
	if !term.echo(t) {
		t.Error("echo is off after the interrupted install")
	}
	if b, _ := os.ReadFile(cfg); string(b) != content {
		t.Errorf("config.env changed by an interrupted install: %q", b)
	}
}

// TestInstallPlatformOnARealTerminal: the platform's own stack with a
// config.env that lacks its domain and GitHub token, on a real pty: a
// domain that misses the pattern is asked again with the reason, the token
// is read without echo, the answers are saved with the file's comments and
// the platform's steps run; Ctrl-C at the token question leaves the file.
func TestInstallPlatformOnARealTerminal(t *testing.T) {
	h := sshhost.Start(t)
	stack := platformStack(t, h, nil, h.Pod(t))
	cfg := filepath.Join(filepath.Dir(stack), "bootstrap/host/config.env")
	content := "# the server\nCODEXK8S_SSH_HOST=" + h.IP + "\nCODEXK8S_SSH_USER=" + sshhost.UserSudo + "\n# keep this comment\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newInstallRun(t)
	args := []string{"install", "--config", stack, "-i", h.ClientKeyFile, "--no-deploy"}

	term := newTerminal(t)
	code := term.start(context.Background(), r, args...)
	term.answer(t, "CODEXK8S_DOMAIN", "Not A Domain")
	term.answer(t, "CODEXK8S_DOMAIN does not match the pattern", "platform.example.test")
	waitFor(t, func() bool { return strings.Contains(term.shown(), "CODEXK8S_GITHUB_PAT") && !term.echo(t) }, "the hidden token question")
	term.answer(t, "CODEXK8S_GITHUB_PAT", platformCanary)
	term.answer(t, "Trust it and continue?", "y")
	term.succeed(t, code, 3*time.Minute)
	screen := term.shown()
	if strings.Contains(screen, platformCanary) {
		t.Errorf("the token was shown:\n%s", screen)
	}
	if !strings.Contains(screen, "[finalize] firewall:  table inet codex-k8s-firewall: 22,80,443 open") {
		t.Errorf("the platform's steps did not run:\n%s", screen)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := content + "CODEXK8S_DOMAIN=platform.example.test\nCODEXK8S_GITHUB_PAT=" + platformCanary + "\n"; string(b) != want {
		t.Errorf("config.env:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.env mode %v", st.Mode())
	}

	// Ctrl-C (the context ends, as on SIGINT) at the token question.
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	interruptAt(t, r, args, [][2]string{{"CODEXK8S_DOMAIN", "platform.example.test"}}, "CODEXK8S_GITHUB_PAT", true, cfg, content)
}

// TestInstallNewProjectOnARealTerminal: examples/new-project with a
// config.env that names no server, on a real pty: install asks for the
// target's host (declared in spec.bootstrap.target), saves it with the
// file's comment at 0600, confirms the unknown host key and runs the
// example's step on the host; Ctrl-C at the question leaves the file.
func TestInstallNewProjectOnARealTerminal(t *testing.T) {
	h := sshhost.Start(t)
	stack := copyStack(t, filepath.Join(repoRoot, "examples/new-project"), []string{"bootstrap", "k8s", "templates"})
	cfg := filepath.Join(filepath.Dir(stack), "bootstrap/config.env")
	content := "# shopfront's server\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"install", "--config", stack, "--no-deploy", "--user", sshhost.UserSudo, "-i", h.ClientKeyFile}
	r := newInstallRun(t)

	term := newTerminal(t)
	code := term.start(context.Background(), r, args...)
	term.answer(t, "SHOP_SSH_HOST", h.IP)
	term.answer(t, "Trust it and continue?", "y")
	term.succeed(t, code, 60*time.Second)
	if out, err := h.Exec(context.Background(), "ls /var/lib/codex-bootstrap/shopfront/steps"); err != nil || out != "tune-node\n" {
		t.Errorf("finished steps on the host: %q, %v\n%s", out, err, term.shown())
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := content + "SHOP_SSH_HOST=" + h.IP + "\n"; string(b) != want {
		t.Errorf("config.env:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(cfg); st.Mode().Perm() != 0o600 {
		t.Errorf("config.env mode %v", st.Mode())
	}

	// Ctrl-C (the context ends, as on SIGINT) at the host question.
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	interruptAt(t, r, args, nil, "SHOP_SSH_HOST", false, cfg, content)
}
