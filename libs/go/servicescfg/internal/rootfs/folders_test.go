package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFoldersKeepAtMostMax: reads from more folders than an FS keeps, from
// several goroutines at once, each get their own file, and no more than
// maxFolders folders stay open.
func TestFoldersKeepAtMostMax(t *testing.T) {
	root := t.TempDir()
	const n = 3 * maxFolders
	for i := range n {
		dir := filepath.Join(root, "deploy", fmt.Sprintf("s%03d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"a.yaml", "b.yaml"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(fmt.Sprintf("%d/%s", i, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for j := range n {
				i := (j + w*maxFolders/2) % n
				for _, name := range []string{"a.yaml", "b.yaml"} {
					p := fmt.Sprintf("deploy/s%03d/%s", i, name)
					got, err := f.ReadFile(p)
					if want := fmt.Sprintf("%d/%s", i, name); err != nil || string(got) != want {
						t.Errorf("%s: %q, %v; want %q", p, got, err, want)
					}
				}
				if _, err := f.ReadDir(fmt.Sprintf("deploy/s%03d", i)); err != nil {
					t.Errorf("list s%03d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	f.folders.mu.Lock()
	kept := len(f.folders.open)
	f.folders.mu.Unlock()
	if kept == 0 || kept > maxFolders {
		t.Errorf("%d folders kept open, want 1..%d", kept, maxFolders)
	}
}

// TestFolderClosedOrSwapped: a kept folder that was closed meanwhile is read
// through the root; one replaced by a link out of the root after it was
// opened is read as it was, never through the link.
func TestFolderClosedOrSwapped(t *testing.T) {
	root := tree(t)
	f, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := f.ReadFile("m/sub/b.yaml"); err != nil || string(got) != "b" {
		t.Fatalf("got %q, %v", got, err)
	}
	f.folders.closeAll() // as an eviction racing with a read would
	if got, err := f.ReadFile("m/sub/b.yaml"); err != nil || string(got) != "b" {
		t.Fatalf("after closing the kept folders: %q, %v", got, err)
	}
	// The folder moves away and a link to a folder outside, holding a
	// b.yaml of its own, takes its place.
	other := filepath.Join(filepath.Dir(root), "other")
	if err := os.WriteFile(filepath.Join(other, "b.yaml"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "m/sub"), filepath.Join(root, "m/old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../other", filepath.Join(root, "m/sub")); err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadFile("m/sub/b.yaml")
	if string(got) == "outside" {
		t.Fatalf("read through a link out of the root: %q", got)
	}
	if err == nil && string(got) != "b" {
		t.Errorf("got %q", got)
	}
	// A new FS refuses the link.
	g, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.ReadFile("m/sub/b.yaml"); err == nil {
		t.Error("a fresh root read through the link")
	}
}

// TestReadDirOfNamedPipe: a named pipe where a folder is looked for is
// refused at once, not waited on (a glob such as pipe/*.yaml).
func TestReadDirOfNamedPipe(t *testing.T) {
	f, err := Open(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"m/fifo.yaml", "fifo"} {
		if name == "fifo" {
			if err := syscall.Mkfifo(filepath.Join(f.Dir(), "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { _, err := f.ReadDir(name); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: listed a named pipe", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: listing a named pipe does not return", name)
		}
	}
}

// TestReadDirInfo: entries listed from a kept folder describe themselves
// through the root, whatever the working directory.
func TestReadDirInfo(t *testing.T) {
	f, err := Open(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Chdir(t.TempDir())
	entries, err := f.ReadDir("m/sub")
	if err != nil || len(entries) != 1 {
		t.Fatalf("got %v, %v", entries, err)
	}
	fi, err := entries[0].Info()
	if err != nil || fi.Name() != "b.yaml" || fi.Size() != 1 || !fi.Mode().IsRegular() {
		t.Errorf("Info: %v, %v", fi, err)
	}
}
