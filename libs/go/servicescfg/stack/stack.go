package stack

import (
	"maps"
	"path/filepath"
	"slices"
	"sync"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/rootfs"
)

// Nodes returns every node: infrastructure first, then services, each in
// declared order.
func (s *Stack) Nodes() []*Node {
	out := make([]*Node, 0, len(s.Spec.Infrastructure)+len(s.Spec.Services))
	out = append(out, s.Spec.Infrastructure...)
	return append(out, s.Spec.Services...)
}

// Node returns the node of that name (the first declared, should a name be
// declared twice), or nil.
func (s *Stack) Node(name string) *Node {
	for _, n := range s.Nodes() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Order returns the deploy groups in order: spec.deploy.order, or
// DefaultOrder when it is empty.
func (s *Stack) Order() []string {
	if len(s.Spec.Deploy.Order) == 0 {
		return DefaultOrder
	}
	return s.Spec.Deploy.Order
}

// GroupIndex returns the position of a group in the deploy order, or -1 for
// a group the order does not have.
func (s *Stack) GroupIndex(group string) int { return slices.Index(s.Order(), group) }

// EnvironmentNames returns the declared environment names, sorted.
func (s *Stack) EnvironmentNames() []string { return slices.Sorted(maps.Keys(s.Spec.Environments)) }

// RuntimeNames returns the runtime profile names, sorted.
func (s *Stack) RuntimeNames() []string { return slices.Sorted(maps.Keys(s.Spec.Runtime)) }

// Abs turns a root-relative slash path (as Glob returns) into an absolute
// file path.
func (s *Stack) Abs(rel string) string { return filepath.Join(s.Root, filepath.FromSlash(rel)) }

// Variable returns the bootstrap variable of that name, or nil.
func (s *Stack) Variable(name string) *Variable {
	if s.Spec.Bootstrap == nil {
		return nil
	}
	for _, v := range s.Spec.Bootstrap.Variables {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// rootFiles is a stack root opened on first use.
type rootFiles struct {
	once sync.Once
	fs   *rootfs.FS
	err  error
}

// Files returns the stack root, opened as an os.Root: every file of the
// stack is read through it (see ReadFile), so no path or symbolic link
// reaches outside the root. It is opened once per Stack, also for a Stack
// built by hand, and stays open with it.
func (s *Stack) Files() (*rootfs.FS, error) {
	files := s.files.Load()
	if files == nil { // a Stack built by hand rather than loaded
		s.files.CompareAndSwap(nil, &rootFiles{})
		files = s.files.Load()
	}
	files.once.Do(func() {
		root := s.Root
		if root == "" {
			root = "."
		}
		files.fs, files.err = rootfs.Open(root)
	})
	return files.fs, files.err
}

// ReadFile reads a file of the stack by its root-relative slash path: a
// regular file inside the root (links followed only while they stay
// inside), of at most rootfs.MaxFileSize bytes. Errors name the file, the
// link and its target that leads outside, the kind of file that is not a
// regular one, or the size limit.
func (s *Stack) ReadFile(rel string) ([]byte, error) {
	fsys, err := s.Files()
	if err != nil {
		return nil, err
	}
	return fsys.ReadFile(rel)
}
