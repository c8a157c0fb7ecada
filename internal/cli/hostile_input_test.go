package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Hostile stacks against the input side of validate and reconcile --dry-run
// (issue 9): each test holds the input that once did harm. docs/testing.md
// lists them with their outcome.

// hostileStack is a minimal valid stack with one service whose manifest is
// m/a.yaml; extra is appended to its spec.
func hostileStack(extra string) string {
	return "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n" +
		"  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n" +
		"  services:\n    - {name: a, manifests: [m/a.yaml]}\n" + extra
}

// runEnv is run with a process environment of the test's own.
func runEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO:        IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	code := Run(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

// TestHostEnvironmentStaysOutOfConfig: a stack that declares a bootstrap
// variable named after a host variable cannot print its value; the operator
// sets a variable through CODEX_VAR_NAME only.
func TestHostEnvironmentStaysOutOfConfig(t *testing.T) {
	root := writeTree(t, map[string]string{
		"services.yaml": hostileStack("  bootstrap:\n    variables:\n      - {name: AWS_SECRET_ACCESS_KEY}\n      - {name: DOMAIN}\n"),
		"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n" +
			"data:\n  stolen: {{ index .Config \"AWS_SECRET_ACCESS_KEY\" | default \"none\" | quote }}\n" +
			"  domain: {{ index .Config \"DOMAIN\" | default \"none\" | quote }}\n",
	})
	env := map[string]string{"AWS_SECRET_ACCESS_KEY": "host-secret-value", "CODEX_VAR_DOMAIN": "codex.example"}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, stderr := runEnv(t, env, "reconcile", "--config", filepath.Join(root, "services.yaml"), "--env", "dev", "--dry-run", "-o", "json", "--output-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	written, err := os.ReadFile(filepath.Join(dir, "01-a", "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{out, stderr, string(written)} {
		if strings.Contains(text, "host-secret-value") {
			t.Fatalf("the host variable reached the output:\n%s", text)
		}
	}
	if !strings.Contains(string(written), `stolen: "none"`) || !strings.Contains(string(written), `domain: "codex.example"`) {
		t.Errorf("rendered:\n%s", written)
	}
}

// TestConfigErrorsKeepSecrets: a token pasted over two lines and a
// KEY: value typo in config.env are reported by file:line, without their
// text; a config.env saved with a byte order mark reads as without it.
func TestConfigErrorsKeepSecrets(t *testing.T) {
	const token = "ghp_pastedTokenPart1"
	spec := hostileStack("  bootstrap:\n    configFile: config.env\n    variables:\n      - {name: DOMAIN}\n      - {name: GITHUB_PAT, secret: true}\n")
	root := writeTree(t, map[string]string{
		"services.yaml": spec,
		"m/a.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"config.env":    "DOMAIN=example.test\nGITHUB_PAT=\"" + token + "\n" + token + "Tail\"\nGITHUB_PAT: " + token + "\n",
	})
	cfg := filepath.Join(root, "services.yaml")
	for _, args := range [][]string{{"validate", "--config", cfg}, {"reconcile", "--config", cfg, "--env", "dev", "--dry-run"}} {
		code, out, stderr := run(t, args...)
		if code != ExitFailure || !strings.Contains(stderr, "config.env:2:12: value of GITHUB_PAT: unterminated double quote") ||
			!strings.Contains(stderr, "config.env:3:1: line is not KEY=VALUE") ||
			!strings.Contains(stderr, "config.env:4:1: line is not KEY=VALUE (write KEY=VALUE, with = instead of :)") {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
		if strings.Contains(out+stderr, "pastedToken") {
			t.Errorf("%v prints the token:\n%s%s", args, out, stderr)
		}
	}

	bom := writeTree(t, map[string]string{
		"services.yaml": spec,
		"m/a.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {domain: {{ .Config.DOMAIN | quote }}}\n",
		"config.env":    "\uFEFFDOMAIN=example.test\n",
	})
	code, out, stderr := run(t, "reconcile", "--config", filepath.Join(bom, "services.yaml"), "--env", "dev", "--dry-run", "--output-dir", filepath.Join(t.TempDir(), "out"))
	if code != 0 {
		t.Errorf("config.env with a byte order mark: exit %d\n%s%s", code, out, stderr)
	}
}

// hostileTree is a stack folder beside a folder of another project, whose
// file must never be read; it returns the stack root.
func hostileTree(t *testing.T, files map[string]string) string {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "stack")
	if err := os.MkdirAll(filepath.Join(parent, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "other", "secret.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other-project-secret}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(body, "link:"):
			err = os.Symlink(strings.TrimPrefix(body, "link:"), p)
		case body == "fifo":
			err = syscall.Mkfifo(p, 0o644)
		default:
			err = os.WriteFile(p, []byte(body), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runWithin runs a command line and fails the test when it has not ended
// within a minute (a read that waits on a named pipe never ends).
func runWithin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, LookupEnv: func(string) (string, bool) { return "", false }}
		code := Run(context.Background(), f, args)
		done <- result{code, out.String(), errOut.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.errOut
	case <-time.After(time.Minute):
		t.Fatalf("%v did not end within a minute", args)
		return 0, "", ""
	}
}

// TestStackFilesStayInsideTheRoot: a manifest, partial, step script or
// config file that is a symbolic link out of the stack folder, or lies under
// a linked folder, is refused with the link and its target named; the file
// outside is never read. So are files that are not regular (a named pipe
// would block the read forever) and links to devices.
func TestStackFilesStayInsideTheRoot(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
	tests := []struct {
		name  string
		extra string // appended to the stack's spec
		files map[string]string
		want  []string
	}{
		{"manifest linked to /etc/hosts", "", map[string]string{"m/a.yaml": "link:/etc/hosts"},
			[]string{`manifest "m/a.yaml" leads outside the stack root: m/a.yaml is a symbolic link to /etc/hosts, an absolute path`}},
		{"manifest linked to another project", "", map[string]string{"m/a.yaml": "link:../../other/secret.yaml"},
			[]string{`m/a.yaml is a symbolic link to ../../other/secret.yaml, outside the stack root`}},
		{"manifest under a linked folder", "", map[string]string{"m": "link:../other"},
			[]string{`m/a.yaml: m is a symbolic link to ../other, outside the stack root`}},
		{"partial linked out", "  templates:\n    partials: [p/*.tpl]\n", map[string]string{"m/a.yaml": cm, "p/x.tpl": "link:../../other/secret.yaml"},
			[]string{`partial pattern "p/*.tpl" leads outside the stack root: p/x.tpl is a symbolic link to ../../other/secret.yaml`}},
		{"step script linked out", "  bootstrap:\n    steps: [{name: s, script: b/s.sh}]\n", map[string]string{"m/a.yaml": cm, "b/s.sh": "link:/etc/passwd"},
			[]string{`b/s.sh is a symbolic link to /etc/passwd`}},
		{"config file linked to /dev/zero", "  bootstrap:\n    configFile: config.env\n", map[string]string{"m/a.yaml": cm, "config.env": "link:/dev/zero"},
			[]string{`config.env is a symbolic link to /dev/zero`}},
		{"config file is a named pipe", "  bootstrap:\n    configFile: config.env\n", map[string]string{"m/a.yaml": cm, "config.env": "fifo"},
			[]string{`is a named pipe, not a regular file`}},
		{"manifest is a named pipe", "", map[string]string{"m/a.yaml": "fifo"},
			[]string{`manifest "m/a.yaml" is a named pipe, not a regular file`}},
		{"glob matches a named pipe", "", map[string]string{"m/a.yaml": cm, "m/b.yaml": "fifo"},
			[]string{`manifest pattern "m/*.yaml" matches m/b.yaml, a named pipe, not a regular file`}},
		{"manifest larger than the limit", "", map[string]string{"m/a.yaml": cm + "data: {x: \"" + strings.Repeat("x", 16<<20) + "\"}\n"},
			[]string{`m/a.yaml is larger than 16 MiB, the limit for a file of a stack`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"services.yaml": hostileStack(tt.extra)}
			for k, v := range tt.files {
				files[k] = v
			}
			root := hostileTree(t, files)
			if strings.Contains(tt.name, "glob") {
				data := strings.Replace(hostileStack(tt.extra), "[m/a.yaml]", "[m/*.yaml]", 1)
				if err := os.WriteFile(filepath.Join(root, "services.yaml"), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(root, "services.yaml")
			for _, args := range [][]string{{"validate", "--config", cfg}, {"reconcile", "--config", cfg, "--env", "dev", "--dry-run", "--output-dir", filepath.Join(t.TempDir(), "out")}} {
				code, out, stderr := runWithin(t, args...)
				if code != ExitFailure {
					t.Errorf("%s: exit %d\n%s%s", args[0], code, out, stderr)
				}
				for _, w := range tt.want {
					if n := strings.Count(stderr, w); n != 1 {
						t.Errorf("%s: stderr says %q %d times, want once:\n%s", args[0], w, n, stderr)
					}
				}
				if strings.Contains(out+stderr, "other-project-secret") || strings.Contains(out+stderr, "localhost") {
					t.Errorf("%s printed a file outside the stack:\n%s%s", args[0], out, stderr)
				}
			}
		})
	}
}

// TestStackFileLinksInsideTheRootWork: links that stay inside the stack
// folder are followed as before.
func TestStackFileLinksInsideTheRootWork(t *testing.T) {
	root := hostileTree(t, map[string]string{
		"services.yaml":   strings.Replace(hostileStack(""), "[m/a.yaml]", "[m/*.yaml]", 1),
		"shared/a.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"m/a.yaml":        "link:../shared/a.yaml",
		"lib/b.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
		"m/b.yaml":        "link:../linked/b.yaml",
		"linked":          "link:lib",
		"m/.keep-out.txt": "",
	})
	code, out, stderr := run(t, "reconcile", "--config", filepath.Join(root, "services.yaml"), "--env", "dev", "--dry-run", "-o", "json")
	if code != 0 || !strings.Contains(out, `"name": "a"`) || !strings.Contains(out, `"name": "b"`) {
		t.Errorf("exit %d\n%s%s", code, out, stderr)
	}
}

// TestOutputDirNameCollision: two manifests of one node that would land on
// one file (a/03-x.yaml, and c/x.yaml third in the list) are an error
// naming both, and nothing is written.
func TestOutputDirNameCollision(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"
	root := writeTree(t, map[string]string{
		"services.yaml": strings.Replace(hostileStack(""), "[m/a.yaml]", "[a/03-x.yaml, b/x.yaml, c/x.yaml]", 1),
		"a/03-x.yaml":   fmt.Sprintf(cm, "one"),
		"b/x.yaml":      fmt.Sprintf(cm, "two"),
		"c/x.yaml":      fmt.Sprintf(cm, "three"),
	})
	dir := filepath.Join(t.TempDir(), "out")
	code, _, stderr := run(t, "reconcile", "--config", filepath.Join(root, "services.yaml"), "--env", "dev", "--dry-run", "--output-dir", dir)
	if code != ExitFailure || !strings.Contains(stderr, "node a: manifests a/03-x.yaml and c/x.yaml would both be written to 01-a/03-x.yaml: rename one of them") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("a failed render wrote %v", entries)
	}
}

// outputStack renders node a in dev and nothing in prod.
func outputStack(t *testing.T) string {
	return writeTree(t, map[string]string{
		"services.yaml": "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n" +
			"  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n    prod: {runtime: prod, namespaceTemplate: n-prod}\n" +
			"  services:\n    - {name: a, when: '{{ ne .Env \"prod\" }}', manifests: [m/a.yaml]}\n    - {name: b, manifests: [m/b.yaml]}\n",
		"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"m/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {env: {{ .Env }}}\n",
	})
}

// TestOutputDirNeverRemovesWhatItDidNotWrite: folders of the user's in the
// output folder, named like the staging folder or not, empty or not, and a
// file the user put in a node folder after a render that left it out, all
// survive later renders: a render refuses or leaves them alone.
func TestOutputDirNeverRemovesWhatItDidNotWrite(t *testing.T) {
	cfg := filepath.Join(outputStack(t), "services.yaml")
	dir := filepath.Join(t.TempDir(), "out")
	render := func(env string) (int, string) {
		code, _, stderr := run(t, "reconcile", "--config", cfg, "--env", env, "--dry-run", "--output-dir", dir)
		return code, stderr
	}
	if code, stderr := render("dev"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// Empty folders of the user's: no file of them is foreign, so the
	// render goes on, and leaves them be.
	empty := []string{stagingPrefix + "0123456789ab", ".render-1", "mine", "01-a/sub"}
	for _, d := range empty {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, env := range []string{"prod", "dev", "prod"} {
		if code, stderr := render(env); code != 0 {
			t.Fatalf("%s: exit %d\n%s", env, code, stderr)
		}
	}
	for _, d := range empty {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("the user's folder %s went: %v", d, err)
		}
	}
	// After the prod render (node a left out, its folder kept for the
	// user's sub-folder), a file of the user's there, and in a folder named
	// like the staging folder: refused, and kept.
	mine := map[string]string{"01-a/notes.txt": "mine", stagingPrefix + "0123456789ab/keep.yaml": "mine too"}
	for name, body := range mine {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, env := range []string{"dev", "prod"} {
		code, stderr := render(env)
		if code != ExitFailure || !strings.Contains(stderr, "did not write") || !strings.Contains(stderr, "01-a/notes.txt") {
			t.Errorf("%s over the user's files: exit %d\n%s", env, code, stderr)
		}
	}
	for name, body := range mine {
		if data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || string(data) != body {
			t.Errorf("%s: %q, %v", name, data, err)
		}
	}
}

// TestOutputDirConcurrentRenders: a render into a folder another render
// holds fails at once and changes nothing; renders racing into one folder
// each succeed or fail so, and the folder ends as one whole render.
func TestOutputDirConcurrentRenders(t *testing.T) {
	cfg := filepath.Join(outputStack(t), "services.yaml")
	dir := filepath.Join(t.TempDir(), "out")
	args := func(env string) []string {
		return []string{"reconcile", "--config", cfg, "--env", env, "--dry-run", "--output-dir", dir}
	}
	if code, _, stderr := run(t, args("dev")...); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	unlock, err := lockFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, args("prod")...)
	unlock()
	if code != ExitFailure || !strings.Contains(stderr, "another render is writing to "+dir) {
		t.Errorf("render into a locked folder: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "01-a", "a.yaml")); err != nil {
		t.Errorf("the locked folder changed: %v", err)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		env := []string{"dev", "prod"}[i%2]
		wg.Go(func() {
			code, _, stderr := run(t, args(env)...)
			if code != 0 && !strings.Contains(stderr, "another render is writing to") {
				t.Errorf("%s: exit %d\n%s", env, code, stderr)
			}
		})
	}
	wg.Wait()
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	owned, foreign, err := sortFiles(dir, m)
	if err != nil || len(foreign) > 0 || len(m.staging) > 0 {
		t.Fatalf("after racing renders: foreign %v, staging %v, %v", foreign, m.staging, err)
	}
	got := strings.Join(owned, " ")
	if got != "01-a/a.yaml 02-b/b.yaml" && got != "01-b/b.yaml" {
		t.Errorf("the folder mixes renders: %s", got)
	}
}
