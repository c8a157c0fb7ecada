package sshhost

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRemoveStaleRoots(t *testing.T) {
	dir := t.TempDir()
	names := []string{"bookworm-v0", "bookworm-v1", "bookworm-v1.lock", rootVersion, rootVersion + ".lock", rootVersion + ".tmp", "trixie-v1", "notes"}
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleRoots(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{rootVersion, rootVersion + ".lock", rootVersion + ".tmp", "notes", "trixie-v1"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
}
