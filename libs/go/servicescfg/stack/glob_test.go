package stack

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func globTree(t *testing.T) *Stack {
	t.Helper()
	root := t.TempDir()
	for _, f := range []string{
		"a.yaml", "b.yml", "deploy/x.yaml", "deploy/y.yaml.tpl", "deploy/sub/z.yaml",
		"deploy/sub/deeper/w.yaml", "deploy/.hidden/h.yaml", "[lit].yaml", "dir.yaml/inner.txt",
	} {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("deploy/x.yaml", filepath.Join(root, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	return &Stack{Root: root}
}

func TestGlob(t *testing.T) {
	s := globTree(t)
	tests := []struct {
		pattern string
		want    []string
	}{
		{"a.yaml", []string{"a.yaml"}},
		{"./deploy/../a.yaml", []string{"a.yaml"}},
		{"*.yaml", []string{"[lit].yaml", "a.yaml", "link.yaml"}},
		{"*.y?ml", []string{"[lit].yaml", "a.yaml", "link.yaml"}},
		{"[ab].y*", []string{"a.yaml", "b.yml"}},
		{`\[lit\].yaml`, []string{"[lit].yaml"}},
		{"deploy/*", []string{"deploy/x.yaml", "deploy/y.yaml.tpl"}},
		{"deploy/**/*.yaml", []string{"deploy/sub/deeper/w.yaml", "deploy/sub/z.yaml", "deploy/x.yaml"}},
		{"deploy/**", []string{"deploy/sub/deeper/w.yaml", "deploy/sub/z.yaml", "deploy/x.yaml", "deploy/y.yaml.tpl"}},
		{"**/**/w.yaml", []string{"deploy/sub/deeper/w.yaml"}},
		{"**/sub/*.yaml", []string{"deploy/sub/z.yaml"}},
		{"deploy/.hidden/*", []string{"deploy/.hidden/h.yaml"}},
		{"dir.yaml", nil},
		{"deploy", nil},
		{"missing/*.yaml", nil},
		{"a.yaml/*", nil},
	}
	for _, tt := range tests {
		got, err := s.Glob(tt.pattern)
		if err != nil {
			t.Errorf("Glob(%q): %v", tt.pattern, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Glob(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestGlobErrors(t *testing.T) {
	s := globTree(t)
	tests := []struct {
		pattern, msg string
		is           error
	}{
		{"deploy/[a.yaml", `pattern "deploy/[a.yaml" is not a valid glob: missing closing ]`, filepath.ErrBadPattern},
		{"[]a]", `pattern "[]a]" is not a valid glob: empty character class []`, filepath.ErrBadPattern},
		{"[-a]", `pattern "[-a]" is not a valid glob: unescaped - in character class (write \- for a literal dash)`, filepath.ErrBadPattern},
		{"[a-]", `pattern "[a-]" is not a valid glob: character range without an end`, filepath.ErrBadPattern},
		{`a\`, `pattern "a\\" is not a valid glob: trailing \ escapes nothing`, filepath.ErrBadPattern},
		{"", `pattern "" is empty`, filepath.ErrBadPattern},
		{"../x/*.yaml", `pattern "../x/*.yaml" leaves the stack root`, ErrOutsideRoot},
		{"deploy/../../x", `pattern "deploy/../../x" leaves the stack root`, ErrOutsideRoot},
		{"..", `pattern ".." leaves the stack root`, ErrOutsideRoot},
		{"/etc/*", `pattern "/etc/*" is an absolute path: write it relative to the stack root`, ErrOutsideRoot},
	}
	for _, tt := range tests {
		_, err := s.Glob(tt.pattern)
		var pe *PatternError
		if !errors.As(err, &pe) || !errors.Is(err, tt.is) || err.Error() != tt.msg || pe.Pattern != tt.pattern {
			t.Errorf("Glob(%q) = %v, want %q wrapping %v", tt.pattern, err, tt.msg, tt.is)
		}
	}
}

// TestGlobFoldersThatMayNotBeEntered: a folder on the way that may not be
// entered (or read) means no match, as a missing one does; a folder that is
// there but may not be listed is an error. Permissions do not bind root: as root, the
// test runs itself again as nobody through setpriv.
func TestGlobFoldersThatMayNotBeEntered(t *testing.T) {
	if os.Geteuid() == 0 {
		asNobody(t, "TestGlobFoldersThatMayNotBeEntered")
		return
	}
	root := t.TempDir()
	for _, f := range []string{"a/sub/x.yaml", "locked/sub/x.yaml", "noexec/sub/x.yaml", "unlisted/x.yaml"} {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for dir, mode := range map[string]os.FileMode{"locked": 0, "noexec": 0o644, "unlisted": 0o311} {
		if err := os.Chmod(filepath.Join(root, dir), mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, dir), 0o755) })
	}
	s := &Stack{Root: root}
	for pattern, want := range map[string][]string{
		"*/sub/*.yaml":      {"a/sub/x.yaml"},
		"locked/sub/*.yaml": nil,
		"noexec/sub/*.yaml": nil,
		"locked/sub/x.yaml": nil,
		"a/sub/*.yaml":      {"a/sub/x.yaml"},
		// The stack root is an os.Root, which opens every folder on the
		// way: one that may be entered but not read is as one that may
		// not be entered.
		"unlisted/x.yaml": nil,
	} {
		got, err := s.Glob(pattern)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Glob(%q) = %q, %v; want %q", pattern, got, err, want)
		}
	}
	if _, err := s.Glob("unlisted/*.yaml"); !errors.Is(err, os.ErrPermission) {
		t.Errorf("Glob of a folder that may not be listed: %v, want a permission error", err)
	}
}

// asNobody runs the named test of this test binary as the user nobody
// (65534), for tests about permissions, which do not bind root.
func asNobody(t *testing.T, name string) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skipf("permissions do not bind root, and setpriv is not installed to drop them: %v", err)
	}
	// The binary must be readable by nobody: a copy in a folder it may enter.
	dir := t.TempDir()
	for d := dir; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if d == os.TempDir() {
			break
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test.bin")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp") // the child's own temporary folders
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run", "^"+name+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s as nobody: %v\n%s", name, err, out)
	}
}

// TestGlobBrokenLink: a symbolic link a pattern matches whose target is
// missing is reported, not skipped; one the pattern does not match is no
// concern of it.
func TestGlobBrokenLink(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "m", "a.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone.yaml", filepath.Join(root, "m", "b.yaml")); err != nil {
		t.Fatal(err)
	}
	s := &Stack{Root: root}
	for _, pattern := range []string{"m/*.yaml", "**/*.yaml"} {
		_, err := s.Glob(pattern)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Problem != "matches m/b.yaml, a symbolic link that leads nowhere" {
			t.Errorf("Glob(%q): %v", pattern, err)
		}
	}
	if got, err := s.Glob("m/a.*"); err != nil || !reflect.DeepEqual(got, []string{"m/a.yaml"}) {
		t.Errorf("Glob(m/a.*) = %q, %v", got, err)
	}
	// Matched by a plain last segment, through a glob above it; and a loop.
	for _, dir := range []string{"x", "y"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "x", "app.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone.yaml", filepath.Join(root, "y", "app.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop.yaml", filepath.Join(root, "y", "loop.yaml")); err != nil {
		t.Fatal(err)
	}
	for pattern, bad := range map[string]string{"*/app.yaml": "y/app.yaml", "**/app.yaml": "y/app.yaml", "y/loop.yaml": "y/loop.yaml", "y/l*.yaml": "y/loop.yaml"} {
		_, err := s.Glob(pattern)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Problem != "matches "+bad+", a symbolic link that leads nowhere" {
			t.Errorf("Glob(%q): %v", pattern, err)
		}
	}
}

// TestGlobLinkLoop: wildcards over two links back to the root (a -> ., b ->
// .) reach 2^N folders with N segments; the pattern is refused once it
// reaches maxGlobFolders, at once, instead of running for minutes (issue 9).
func TestGlobLinkLoop(t *testing.T) {
	root := t.TempDir()
	for _, l := range []string{"a", "b"} {
		if err := os.Symlink(".", filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "x.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Stack{Root: root}
	pattern := strings.Repeat("*/", 35) + "*.yaml"
	// Reading through the stack's os.Root stops following links a few
	// levels deep, so the pattern may end matching nothing before the
	// folder bound refuses it; either way it ends at once.
	got, err := s.Glob(pattern)
	var pe *PatternError
	switch {
	case err == nil && len(got) == 0:
	case errors.As(err, &pe) && errors.Is(err, ErrTooManyFolders) && pe.Pattern == pattern:
	default:
		t.Fatalf("Glob: %q, %v", got, err)
	}
	if got, err := s.Glob("*/*/*.yaml"); err != nil || len(got) != 4 {
		t.Errorf("a short pattern over the loop: %q, %v", got, err)
	}
}

// TestGlobOverNamedPipe: a named pipe where a pattern expects a folder
// matches nothing, at once (listing it used to wait for a writer).
func TestGlobOverNamedPipe(t *testing.T) {
	s := globTree(t)
	if err := syscall.Mkfifo(filepath.Join(s.Root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var got []string
	var err error
	go func() { got, err = s.Glob("pipe/*.yaml"); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the glob waits on the named pipe")
	}
	if err != nil || len(got) != 0 {
		t.Errorf("got %v, %v; want no match", got, err)
	}
}

// TestFilesOfHandBuiltStack: a Stack built by hand opens its root once,
// like a loaded one, instead of once per call.
func TestFilesOfHandBuiltStack(t *testing.T) {
	s := globTree(t)
	a, err := s.Files()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Glob("deploy/*.yaml"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadFile("a.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := s.Files(); err != nil || a != b {
		t.Errorf("Files returned %p then %p (%v)", a, b, err)
	}
}
