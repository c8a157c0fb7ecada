package stack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
