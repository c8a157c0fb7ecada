package workspace

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// localExec runs the helper's commands on this machine, in a folder that
// stands for the workspace: the same sh, tar and xargs scripts as in the
// pod. cut, when set, truncates stdin after that many bytes (a sync
// interrupted midway).
type localExec struct{ cut int }

func (l localExec) Exec(ctx context.Context, ns, pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	if stdin != nil && l.cut > 0 {
		stdin = io.LimitReader(stdin, int64(l.cut))
	}
	c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
	return c.Run()
}

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree returns path -> content of the regular files under root, StateDir
// left out.
func listTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && rel == StateDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			out[filepath.ToSlash(rel)] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m Manifest) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestScanIgnoreRules(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{
		".gitignore":                 "node_modules/\n*.log\n/dist\n",
		".dockerignore":              "secret.env\n",
		"secret.env":                 "x",
		"main.go":                    "package main",
		"debug.log":                  "x",
		"dist/app.js":                "x",
		"web/dist/keep.js":           "x", // /dist is anchored at the root
		"web/node_modules/vite/a.js": "x",
		"web/.gitignore":             "generated.ts\n",
		"web/generated.ts":           "x",
		"web/src/generated.ts":       "x", // unanchored: ignored below web too
		"web/src/main.ts":            "x",
		"other/generated.ts":         "x", // web's rules stay in web
		".git/config":                "x",
		StateDir + "/manifest.json":  "x",
	})
	tr, err := NewTree(root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tr.Scan()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".dockerignore", ".gitignore", "main.go", "other/generated.ts", "web/.gitignore", "web/dist/keep.js", "web/src/main.ts"}
	if got := keys(m); !slices.Equal(got, want) {
		t.Fatalf("scanned %v\nwant      %v", got, want)
	}
}

func TestScanRefusesLinksLeavingTheTree(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, map[string]string{"id_rsa": "secret"})
	for name, target := range map[string]string{
		"absolute":  filepath.Join(outside, "id_rsa"),
		"relative":  "", // computed from the subtest's folder
		"dot-dot":   "../../etc/passwd",
		"via-link":  "inner", // inner leads out: resolved on disk too
		"to-parent": "..",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, map[string]string{"a.go": "x"})
			if name == "relative" {
				rel, err := filepath.Rel(root, filepath.Join(outside, "id_rsa"))
				if err != nil {
					t.Fatal(err)
				}
				target = rel
			}
			if name == "via-link" {
				if err := os.Symlink(outside, filepath.Join(root, "inner-dir")); err != nil {
					t.Fatal(err)
				}
				write(t, root, map[string]string{".gitignore": "inner-dir\n"})
				target = "inner-dir/id_rsa"
			}
			if err := os.Symlink(target, filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
			tr, _ := NewTree(root)
			_, err := tr.Scan()
			if !errors.Is(err, ErrOutsideTree) || !strings.Contains(err.Error(), "link") {
				t.Fatalf("Scan = %v, want ErrOutsideTree naming the link", err)
			}
		})
	}
	// A link inside the tree is sent as a link.
	root := t.TempDir()
	write(t, root, map[string]string{"src/a.go": "x"})
	if err := os.Symlink("src/a.go", filepath.Join(root, "alias.go")); err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTree(root)
	m, err := tr.Scan()
	if err != nil || m["alias.go"].Link != "src/a.go" {
		t.Fatalf("Scan = %v, %v; want alias.go as a link", m, err)
	}
}

func TestDiff(t *testing.T) {
	remote := Manifest{"a": {Hash: "1"}, "gone/deep/x": {Hash: "2"}, "gone/y": {Hash: "3"}, "keep/z": {Hash: "4"}, "keep/old": {Hash: "5"}, "mode": {Hash: "6", Mode: 0o644}}
	local := Manifest{"a": {Hash: "1"}, "keep/z": {Hash: "9"}, "new/n": {Hash: "7"}, "mode": {Hash: "6", Mode: 0o755}}
	c := Diff(remote, local)
	want := Changes{
		Put:    []string{"keep/z", "mode", "new/n"},
		Delete: []string{"gone/deep/x", "gone/y", "keep/old"},
		Rmdir:  []string{"gone/deep", "gone"},
	}
	if !slices.Equal(c.Put, want.Put) || !slices.Equal(c.Delete, want.Delete) || !slices.Equal(c.Rmdir, want.Rmdir) {
		t.Fatalf("Diff = %+v\nwant   %+v", c, want)
	}
}

func newLocalSyncer(t *testing.T, src, ws string, ex Executor) *Syncer {
	t.Helper()
	tr, err := NewTree(src)
	if err != nil {
		t.Fatal(err)
	}
	return &Syncer{Tree: tr, Spec: Spec{MountPath: ws}, Pod: HelperName, Exec: ex}
}

// TestSyncThroughTheHelperScripts runs the helper's scripts with this
// machine's sh and tar: changes, deletions (empty folders removed) and a
// second run that sends nothing.
func TestSyncThroughTheHelperScripts(t *testing.T) {
	ctx := t.Context()
	src, ws := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"catalog/main.go": "v1", "catalog/internal/h.go": "h", "web/index.html": "i", "web/.gitignore": "node_modules/\n", "web/node_modules/x.js": "x"})
	write(t, ws, map[string]string{".cache/go/keep": "cache"}) // not the tree's: left alone
	s := newLocalSyncer(t, src, ws, localExec{})
	res, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes.Put) != 4 {
		t.Fatalf("first sync sent %v", res.Changes.Put)
	}
	write(t, src, map[string]string{"catalog/main.go": "v2"})
	if err := os.RemoveAll(filepath.Join(src, "catalog/internal")); err != nil {
		t.Fatal(err)
	}
	// A new Syncer reads the manifest the first one left.
	s = newLocalSyncer(t, src, ws, localExec{})
	res, err = s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changes.Put, []string{"catalog/main.go"}) || !slices.Equal(res.Changes.Delete, []string{"catalog/internal/h.go"}) {
		t.Fatalf("second sync: %+v", res.Changes)
	}
	want := map[string]string{"catalog/main.go": "v2", "web/index.html": "i", "web/.gitignore": "node_modules/\n", ".cache/go/keep": "cache"}
	if got := listTree(t, ws); !mapsEqual(got, want) {
		t.Fatalf("workspace %v\nwant      %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(ws, "catalog/internal")); !os.IsNotExist(err) {
		t.Fatalf("catalog/internal left behind: %v", err)
	}
	if res, err := s.Sync(ctx); err != nil || !res.Changes.Empty() {
		t.Fatalf("third sync = %+v, %v; want nothing to send", res.Changes, err)
	}
}

// TestSyncInterruptedMidway cuts the archive in the middle of a file: the
// sync fails, and the next one (a new process) leaves the workspace equal
// to the tree.
func TestSyncInterruptedMidway(t *testing.T) {
	ctx := t.Context()
	src, ws := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"a.go": "a1", "b.go": strings.Repeat("b", 5000), "c.go": "c1"})
	if _, err := newLocalSyncer(t, src, ws, localExec{}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	write(t, src, map[string]string{"a.go": "a2", "b.go": strings.Repeat("B", 5000)})
	if err := os.Remove(filepath.Join(src, "c.go")); err != nil {
		t.Fatal(err)
	}
	if _, err := newLocalSyncer(t, src, ws, localExec{cut: 2048}).Sync(ctx); err == nil {
		t.Fatal("a sync cut midway succeeded")
	}
	// a.go is new, b.go half written: the pending manifest says so.
	if _, err := os.Stat(filepath.Join(ws, pendingFile)); err != nil {
		t.Fatalf("pending manifest after an interrupted sync: %v", err)
	}
	// The user reverts a.go meanwhile: the next sync must still send it.
	write(t, src, map[string]string{"a.go": "a1"})
	if _, err := newLocalSyncer(t, src, ws, localExec{}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := listTree(t, ws), listTree(t, src); !mapsEqual(got, want) {
		t.Fatalf("workspace %v\nwant      %v", got, want)
	}
}

func TestWatchSendsChangesAndDeletions(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src, ws := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"svc/main.go": "v1"})
	s := newLocalSyncer(t, src, ws, localExec{})
	results := make(chan Result, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, WatchOptions{}, func(r Result, err error) {
			if err != nil {
				t.Error(err)
			}
			results <- r
		})
	}()
	next := func() Result {
		select {
		case r := <-results:
			return r
		case <-ctx.Done():
			t.Fatal("no sync")
		}
		return Result{}
	}
	next() // the first, full sync
	write(t, src, map[string]string{"svc/main.go": "v2", "svc/new/dir/file.go": "n"})
	for got := map[string]string{}; got["svc/new/dir/file.go"] == "" || got["svc/main.go"] != "v2"; got = listTree(t, ws) {
		next()
	}
	if err := os.RemoveAll(filepath.Join(src, "svc/new")); err != nil {
		t.Fatal(err)
	}
	for r := next(); len(r.Changes.Delete) == 0; r = next() {
	}
	if got := listTree(t, ws); !mapsEqual(got, map[string]string{"svc/main.go": "v2"}) {
		t.Fatalf("workspace after deletion: %v", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var _ = bytes.NewBuffer
