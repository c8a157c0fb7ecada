// Package docs keeps the documentation honest: every test the traceability
// names exists, every relative link resolves, and the commands the README
// and the runbook quote that contact nothing run and succeed.
package docs

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/internal/cli"
)

// repoRoot is the repository, two folders up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// docFiles are the documents checked: README.md and everything under docs/.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// testFuncs lists the names of every test, fuzz target and benchmark
// declared in the repository's _test.go files.
func testFuncs(t *testing.T, root string) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllSubmatch(data, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestTraceabilityNamesExistingTests: every Go test, fuzz target or
// benchmark the traceability and the issue map name is declared somewhere.
func TestTraceabilityNamesExistingTests(t *testing.T) {
	root := repoRoot(t)
	funcs := testFuncs(t, root)
	named := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*)`")
	for _, doc := range []string{"docs/delivery/requirements_traceability.md", "docs/delivery/issue_map.md", "docs/testing.md"} {
		data, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range named.FindAllStringSubmatch(line, -1) {
				if !funcs[m[1]] {
					t.Errorf("%s:%d names %s, which no _test.go declares", doc, i+1, m[1])
				}
			}
		}
	}
}

// TestDocLinksResolve: every relative link of README.md and docs/ leads to
// a file or folder of the repository.
func TestDocLinksResolve(t *testing.T) {
	root := repoRoot(t)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range docFiles(t, root) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				target, _, _ = strings.Cut(target, "#")
				if _, err := os.Stat(filepath.Join(filepath.Dir(doc), filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d links %s, which does not exist", rel, i+1, m[1])
				}
			}
		}
	}
}

// quotedCommands returns the codex-bootstrap command lines of doc's shell
// blocks that contact nothing: validate, and reconcile with --dry-run.
func quotedCommands(t *testing.T, doc string) [][]string {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[0] == "go" && fields[1] == "run" && fields[2] == "./cmd/codex-bootstrap":
			fields = fields[3:]
		case len(fields) >= 1 && fields[0] == "codex-bootstrap":
			fields = fields[1:]
		default:
			continue
		}
		if len(fields) == 0 || fields[0] != "validate" && !(fields[0] == "reconcile" && slices.Contains(fields, "--dry-run")) {
			continue
		}
		out = append(out, fields)
	}
	return out
}

// TestQuotedCommandsRun: the commands README.md and the staging runbook
// quote that contact nothing (validate, reconcile --dry-run) run from the
// repository root and succeed; an --output-dir goes to a fresh folder.
func TestQuotedCommandsRun(t *testing.T) {
	root := repoRoot(t)
	t.Chdir(root)
	ran := 0
	for _, doc := range []string{"README.md", "docs/ops/staging_runbook.md", "deploy/README.md", "examples/new-project/README.md"} {
		for _, args := range quotedCommands(t, doc) {
			if i := slices.Index(args, "--output-dir"); i >= 0 && i+1 < len(args) {
				args[i+1] = filepath.Join(t.TempDir(), "out")
			}
			var out, errOut bytes.Buffer
			f := &cli.Factory{
				IO:        cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
				LookupEnv: func(string) (string, bool) { return "", false },
			}
			if code := cli.Run(context.Background(), f, args); code != 0 {
				t.Errorf("%s: codex-bootstrap %s: exit %d\n%s", doc, strings.Join(args, " "), code, errOut.String())
			}
			t.Logf("%s: codex-bootstrap %s", doc, strings.Join(args, " "))
			ran++
		}
	}
	if ran < 3 {
		t.Errorf("only %d commands found in the documents: is the parser still right?", ran)
	}
}

// TestDeployStagingScript: deploy/scripts/deploy_staging.sh, as the runbook
// says, builds codex-bootstrap when none is on PATH (a build, not go run, so
// exit codes reach the caller unchanged) and passes its arguments to
// reconcile --env staging.
func TestDeployStagingScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds codex-bootstrap")
	}
	root := repoRoot(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	// A PATH with go and the usual tools, without any codex-bootstrap.
	path := filepath.Dir(goBin) + string(os.PathListSeparator) + "/usr/local/bin:/usr/bin:/bin"
	script := filepath.Join(root, "deploy", "scripts", "deploy_staging.sh")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--dry-run"}, 0, "codex-k8s-staging"},
		{[]string{"--dry-run", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
	} {
		cmd := exec.Command(script, tt.args...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(string(out), tt.want) {
			t.Errorf("deploy_staging.sh %s: exit %d, want %d with %q\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out)
		}
	}
}
