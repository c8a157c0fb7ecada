package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestValidateHostileStack: the hostile templates of testdata/hostile (a
// fail message that would retitle and clear the terminal, a range over
// 300,000,000, an exponential include fan-out, a string doubled in a loop,
// a random password) each fail validate at their position, exit 1 (not the
// usage code, not a crash), and no control character reaches stderr.
func TestValidateHostileStack(t *testing.T) {
	code, out, stderr := run(t, "validate", "--config", "testdata/hostile/services.yaml")
	if code != ExitFailure || out != "" {
		t.Fatalf("exit %d, stdout %q, want 1 and nothing", code, out)
	}
	want := []string{
		`m/escape.yaml:1: title \x1b]0;pwned\a clear \x1b[2J bidi \u202e done`,
		`m/flood.yaml:3: printf returns more than 16777216 bytes`,
		`m/loop.yaml:1: range over 300000000: more than the 1048576 steps a render may take`,
		`m/random.yaml:3: function "randAlphaNum" is not available: its result is random`,
		`render budget exceeded: more than 1048576 steps`,
		`5 problems found`,
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if i := strings.IndexFunc(stderr, func(r rune) bool { return r < 0x20 && r != '\n' || r == 0x7f || r == '\u202e' }); i >= 0 {
		t.Errorf("stderr holds a control character at %d: %q", i, stderr[max(0, i-20):min(len(stderr), i+20)])
	}
}

// TestEscapedFileNames: a manifest named with escape sequences is named in
// errors with them escaped.
func TestEscapedFileNames(t *testing.T) {
	name := "m/\x1b[31mred\x1b[0m.yaml"
	root := writeTree(t, map[string]string{
		"services.yaml": stackYAML(`    - {name: api, manifests: ["m/*.yaml"]}`),
		name:            "{{ .Nope }}\n",
	})
	code, _, stderr := run(t, "validate", "--config", filepath.Join(root, "services.yaml"))
	if code != ExitFailure || !strings.Contains(stderr, `m/\x1b[31mred\x1b[0m.yaml:1:`) || strings.ContainsRune(stderr, 0x1b) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestProblemsCapped: a stack failing in 300 manifests prints the first 200
// problems, then how many more there are; a message of megabytes is cut.
func TestProblemsCapped(t *testing.T) {
	var services strings.Builder
	files := map[string]string{}
	for i := range 300 {
		fmt.Fprintf(&services, "    - {name: s%03d, manifests: [m/s%03d.yaml]}\n", i, i)
		files[fmt.Sprintf("m/s%03d.yaml", i)] = fmt.Sprintf("{{ fail %q }}\n", fmt.Sprintf("broken %03d", i))
	}
	files["m/s000.yaml"] = `{{ fail (repeat 3000000 "x") }}` + "\n"
	files["services.yaml"] = stackYAML(strings.TrimSuffix(services.String(), "\n"))
	root := writeTree(t, files)
	code, _, stderr := run(t, "validate", "--config", filepath.Join(root, "services.yaml"))
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 202 || lines[200] != "... 100 more problems not shown" || lines[201] != "300 problems found" {
		t.Errorf("got %d lines, ending %q", len(lines), lines[max(0, len(lines)-2):])
	}
	if len(stderr) > 64<<10 || !strings.HasPrefix(lines[0], "m/s000.yaml:1: xxx") || !strings.HasSuffix(lines[0], " more bytes)") {
		t.Errorf("stderr of %d bytes, first line %.80q...", len(stderr), lines[0])
	}
}

// TestOutputWriteFailure: validate and reconcile --dry-run fail when their
// report cannot be written (stdout on a full device).
func TestOutputWriteFailure(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	for _, args := range [][]string{
		{"validate", "--config", "../../examples/new-project/services.yaml"},
		{"reconcile", "--config", "../../examples/new-project/services.yaml", "--env", "dev", "--dry-run"},
		{"reconcile", "--config", "../../examples/new-project/services.yaml", "--env", "dev", "--dry-run", "-o", "json"},
	} {
		var errOut bytes.Buffer
		f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: full, ErrOut: &errOut}, LookupEnv: func(string) (string, bool) { return "", false }}
		if code := Run(t.Context(), f, args); code != ExitFailure || !strings.Contains(errOut.String(), "no space left on device") {
			t.Errorf("%s: exit %d, stderr %q", args[0], code, errOut.String())
		}
	}
}

// fanoutStack writes a stack of n services whose manifests each run the
// exponential include fan-out until the render budget stops it (about half
// a second each): minutes of work in all.
func fanoutStack(t *testing.T, n int) string {
	t.Helper()
	partial, err := os.ReadFile("testdata/hostile/partials/fanout.tpl")
	if err != nil {
		t.Fatal(err)
	}
	var services strings.Builder
	files := map[string]string{"partials/fanout.tpl": string(partial)}
	for i := range n {
		fmt.Fprintf(&services, "    - {name: s%03d, manifests: [m/s%03d.yaml]}\n", i, i)
		files[fmt.Sprintf("m/s%03d.yaml", i)] = "kind: ConfigMap\n{{ include \"fanout.60\" . }}\n"
	}
	files["services.yaml"] = strings.Replace(stackYAML(strings.TrimSuffix(services.String(), "\n")),
		"  environments:", "  templates: {partials: [partials/*.tpl]}\n  environments:", 1)
	root := writeTree(t, files)
	return filepath.Join(root, "services.yaml")
}

// TestInterruptStopsRender: cancelling the context (what SIGINT and SIGTERM
// do in Main) stops validate and reconcile --dry-run in the middle of
// rendering, with exit 130.
func TestInterruptStopsRender(t *testing.T) {
	wantInterrupted(t, fanoutStack(t, 200))
}

// wantInterrupted cancels validate and reconcile --dry-run of cfg after
// 300 ms and wants exit 130, "interrupted".
func wantInterrupted(t *testing.T, cfg string) {
	t.Helper()
	for _, args := range [][]string{
		{"validate", "--config", cfg},
		{"reconcile", "--config", cfg, "--env", "dev", "--dry-run"},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		var out, errOut bytes.Buffer
		f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, LookupEnv: func(string) (string, bool) { return "", false }}
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		code := Run(ctx, f, args)
		if code != ExitInterrupt || errOut.String() != "interrupted\n" {
			t.Errorf("%s: exit %d after %s, stderr %q", args[0], code, time.Since(start), errOut.String())
		}
		cancel()
	}
}

// TestInterruptStopsLoad: cancelling the context stops validate and
// reconcile --dry-run while they load a stack whose globs would take
// minutes (thousands of ** patterns over a wide tree), with exit 130.
func TestInterruptStopsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 1,600 folders")
	}
	files := map[string]string{}
	for i := range 40 {
		for j := range 40 {
			files[fmt.Sprintf("deploy/d%d/e%d/.keep", i, j)] = ""
		}
	}
	var services strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&services, "    - {name: s%d, manifests: [\"deploy/**/s%d.yaml\"]}\n", i, i)
	}
	files["services.yaml"] = stackYAML(strings.TrimSuffix(services.String(), "\n"))
	wantInterrupted(t, filepath.Join(writeTree(t, files), "services.yaml"))
}

// TestSignalStopsRender sends SIGTERM to the built binary while it renders
// and wants exit 130.
func TestSignalStopsRender(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "codex-bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/codex-bootstrap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := fanoutStack(t, 200)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin, "validate", "--config", cfg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != ExitInterrupt {
				t.Errorf("%v: %v, stderr %q", sig, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v: still running 20s after the signal", sig)
		}
	}
}

// stackYAML is a one-environment stack whose services are the given YAML
// lines.
func stackYAML(services string) string {
	return `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: t}
spec:
  project: t
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "t-dev"}
  services:
` + services + "\n"
}
