package rootfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree builds a stack folder with hostile entries beside a parent folder
// holding a file of another project.
func tree(t *testing.T) (root string) {
	t.Helper()
	parent := t.TempDir()
	root = filepath.Join(parent, "stack")
	other := filepath.Join(parent, "other")
	for _, d := range []string{root + "/m/sub", other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(root+"/m/a.yaml", "a")
	write(root+"/m/sub/b.yaml", "b")
	write(other+"/secret.env", "TOKEN=x")
	links := map[string]string{
		"m/inside.yaml":   "a.yaml",          // stays inside
		"m/up.yaml":       "../m/sub/b.yaml", // climbs and comes back
		"m/hosts.yaml":    "/etc/hosts",      // absolute, outside
		"m/zero.yaml":     "/dev/zero",       // absolute, endless
		"m/other.yaml":    "../../other/secret.env",
		"m/abs.yaml":      filepath.Join(root, "m/a.yaml"), // absolute, inside
		"linked":          "../other",                      // a folder outside
		"m/chain.yaml":    "hop.yaml",                      // a link to a link outside
		"m/hop.yaml":      "../../other/secret.env",
		"m/subdir":        "sub", // a folder inside
		"m/dangling.yaml": "missing.yaml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "m/fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestReadFile(t *testing.T) {
	f, err := Open(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name, want string
		// err is the message, or empty when the read succeeds.
		err string
	}{
		{name: "m/a.yaml", want: "a"},
		{name: "m/inside.yaml", want: "a"},
		{name: "m/up.yaml", want: "b"},
		{name: "m/subdir/b.yaml", want: "b"},
		{name: "m/hosts.yaml", err: "m/hosts.yaml is a symbolic link to /etc/hosts, an absolute path: links in a stack must be relative and stay inside it"},
		{name: "m/zero.yaml", err: "m/zero.yaml is a symbolic link to /dev/zero, an absolute path"},
		{name: "m/other.yaml", err: "m/other.yaml is a symbolic link to ../../other/secret.env, outside the stack root"},
		{name: "m/abs.yaml", err: "m/abs.yaml is a symbolic link to /"},
		{name: "linked/secret.env", err: "linked/secret.env: linked is a symbolic link to ../other, outside the stack root"},
		{name: "m/chain.yaml", err: "m/chain.yaml: m/hop.yaml is a symbolic link to ../../other/secret.env, outside the stack root"},
		{name: "m/fifo.yaml", err: "m/fifo.yaml is a named pipe, not a regular file"},
		{name: "m", err: "m is a folder, not a regular file"},
		{name: "m/dangling.yaml", err: "no such file or directory"},
		{name: "../other/secret.env", err: "path escapes from parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() { got, err = f.ReadFile(tt.name); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the read does not return")
			}
			if tt.err == "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("got %q, %v; want an error with %q", got, err, tt.err)
			}
		})
	}
	var esc *EscapeError
	if _, err := f.ReadFile("m/other.yaml"); !errors.As(err, &esc) || !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("escape error %v is not an *EscapeError wrapping ErrOutsideRoot", err)
	}
	if _, err := f.ReadFile("m/dangling.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling link: %v; want fs.ErrNotExist", err)
	}
}

func TestReadFileSizeLimit(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "big"), bytes.Repeat([]byte("x"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.readFile("big", 2<<20)
	var tl *TooLargeError
	if !errors.As(err, &tl) || err.Error() != "big is larger than 2 MiB, the limit for a file of a stack" {
		t.Errorf("got %v", err)
	}
	for _, size := range []int64{3 << 20, 3<<20 + 1} {
		if got, err := f.readFile("big", size); err != nil || len(got) != 3<<20 {
			t.Errorf("limit %d: %d bytes, %v", size, len(got), err)
		}
	}
}

func TestWalkAndStatStayInside(t *testing.T) {
	f, err := Open(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Stat("linked/secret.env"); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("Stat through a folder link outside: %v", err)
	}
	if fi, err := f.Stat("m/inside.yaml"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("Stat of a link inside: %v, %v", fi, err)
	}
	if _, err := f.ReadDir("linked"); !errors.Is(err, ErrOutsideRoot) {
		t.Errorf("ReadDir of a folder link outside: %v", err)
	}
	var seen []string
	err = f.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		seen = append(seen, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range seen {
		if strings.HasPrefix(p, "linked/") || strings.HasPrefix(p, "m/subdir/") {
			t.Errorf("walk went through a link: %s", p)
		}
	}
}
