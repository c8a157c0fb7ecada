package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadStopsWhenCancelled: loading a stack whose globs would take
// minutes (thousands of ** patterns over a wide tree) ends promptly when its
// context is cancelled, with an error wrapping the context's and no stack.
func TestLoadStopsWhenCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 1,600 folders")
	}
	root := t.TempDir()
	for i := range 40 {
		for j := range 40 {
			if err := os.MkdirAll(filepath.Join(root, "deploy", fmt.Sprintf("d%d/e%d", i, j)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	var b strings.Builder
	b.WriteString(header + "  services:\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "    - {name: s%d, manifests: [\"deploy/**/s%d.yaml\"]}\n", i, i)
	}
	path := filepath.Join(root, "services.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var s *Stack
	var err error
	go func() { s, err = LoadContext(ctx, path); close(done) }()
	time.Sleep(200 * time.Millisecond) // let it run, then interrupt it
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the load did not stop")
	}
	if s != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, %v; want no stack and context.Canceled", s, err)
	}
}
