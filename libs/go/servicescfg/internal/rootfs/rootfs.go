// Package rootfs reads the files of a stack through an os.Root opened at the
// stack's root, so that no path, symbolic link or link swapped after a check
// reaches a file outside it, and only regular files of bounded size are read.
//
// A stack is often written by someone else (a pull request, a template
// repository), and CI reads it with secrets at hand: a manifest that is a link
// to /etc/hosts, a config file that is a named pipe (a read that never ends)
// or a link to /dev/zero (a read that ends in out-of-memory) must each be a
// clear error naming the file, never followed.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// MaxFileSize is the size limit of one file of a stack (services.yaml, a
// template, a step script, the config file).
const MaxFileSize = 16 << 20

// ErrOutsideRoot is wrapped by errors about paths and links that lead
// outside the stack root.
var ErrOutsideRoot = errors.New("path leaves the stack root")

// FS is a stack folder. It is safe for concurrent use.
type FS struct {
	root    *os.Root
	dir     string
	folders folders // the folders read from last (folders.go)
}

// Open opens the folder dir (links in dir itself are followed).
func Open(dir string) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &FS{root: r, dir: dir}, nil
}

// Dir is the folder the FS was opened at.
func (f *FS) Dir() string { return f.dir }

// Close releases the folder.
func (f *FS) Close() error {
	f.folders.closeAll()
	return f.root.Close()
}

// EscapeError is a path whose symbolic link Link (root-relative) points to
// Target (as written in the link), outside the root or by an absolute path.
type EscapeError struct {
	Name, Link, Target string
}

func (e *EscapeError) Error() string {
	what := "outside the stack root"
	if path.IsAbs(e.Target) || filepath.IsAbs(e.Target) {
		what = "an absolute path: links in a stack must be relative and stay inside it"
	}
	if e.Link == e.Name {
		return fmt.Sprintf("%s is a symbolic link to %s, %s", e.Link, e.Target, what)
	}
	return fmt.Sprintf("%s: %s is a symbolic link to %s, %s", e.Name, e.Link, e.Target, what)
}

func (e *EscapeError) Unwrap() error { return ErrOutsideRoot }

// NotRegularError is a file that is not a regular one: a named pipe, a
// device, a socket, a folder.
type NotRegularError struct {
	Name string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", e.Name, Describe(e.Mode))
}

// Describe names the type of a file mode: "a named pipe", "a folder", ...
func Describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	}
	return "an irregular file"
}

// TooLargeError is a file over the size limit.
type TooLargeError struct {
	Name  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %d MiB, the limit for a file of a stack", e.Name, e.Limit>>20)
}

// ReadFile reads the regular file name (slash-separated, relative to the
// root), following links that stay inside the root. A path through a link
// that leaves the root is an *EscapeError, a file that is not regular a
// *NotRegularError (a named pipe is refused without waiting for a writer),
// one over MaxFileSize a *TooLargeError. Other errors wrap the fs errors
// (fs.ErrNotExist for a missing file).
func (f *FS) ReadFile(name string) ([]byte, error) {
	return f.readFile(name, MaxFileSize)
}

func (f *FS) readFile(name string, limit int64) ([]byte, error) {
	if dir, base, ok := split(name); ok {
		if d := f.folder(dir); d != nil {
			if b, err := d.readFile(base, limit); err == nil {
				return b, nil
			}
			// Whatever went wrong, the root decides and explains.
		}
	}
	return f.readRoot(name, limit)
}

// readRoot reads the regular file name through the root.
func (f *FS) readRoot(name string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a named pipe would otherwise wait for a writer.
	file, err := f.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, f.explain(name, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Name: name, Mode: fi.Mode()}
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{Name: name, Limit: limit}
	}
	buf := make([]byte, 0, fi.Size()+1) // +1: the read that sees the end
	for {
		n, err := file.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if int64(len(buf)) > limit {
			return nil, &TooLargeError{Name: name, Limit: limit}
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // the file grew: make room
		}
	}
}

// FS is the root as an fs.FS (for fs.Glob and the like).
func (f *FS) FS() fs.FS { return f.root.FS() }

// Stat describes name, following links inside the root.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	fi, err := f.root.Stat(filepath.FromSlash(name))
	if err != nil {
		return nil, f.explain(name, err)
	}
	return fi, nil
}

// Lstat describes name itself, a link not followed (links on the way are).
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := f.root.Lstat(filepath.FromSlash(name))
	if err != nil {
		return nil, f.explain(name, err)
	}
	return fi, nil
}

// ReadDir lists the folder name ("." for the root), sorted by name. A named
// pipe in a folder's place is refused at once, not waited on.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if dir, base, ok := split(name); ok {
		if d := f.folder(dir); d != nil {
			if entries, err := d.readDir(f, base, name); err == nil {
				return entries, nil
			}
			// Whatever went wrong, the root decides and explains.
		}
	}
	// O_DIRECTORY: opening a named pipe would otherwise wait for a
	// writer; O_NONBLOCK spares the poller's setup, which a folder does
	// not use.
	d, err := f.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK|oDirectory, 0)
	if err != nil {
		return nil, f.explain(name, err)
	}
	entries, err := sortedEntries(d)
	if err != nil {
		return nil, f.explain(name, err)
	}
	return entries, nil
}

// sortedEntries lists the open folder d, sorted by name, and closes it.
func sortedEntries(d *os.File) ([]fs.DirEntry, error) {
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

// WalkDir walks the tree at name like fs.WalkDir, inside the root: links to
// folders are not descended into (name itself excepted).
func (f *FS) WalkDir(name string, fn fs.WalkDirFunc) error {
	return fs.WalkDir(f.root.FS(), name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			err = f.explain(p, err)
		}
		return fn(p, d, err)
	})
}

// explain turns an error of the root about name into an *EscapeError when a
// link on the way leads outside the root; other errors are returned as they
// are. os.Root does not say which link it refused, so the path is walked
// again, link by link.
func (f *FS) explain(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		// A missing target is not an escape; os.Root reports an escape
		// as neither.
		return err
	}
	if e := f.escape(name); e != nil {
		return e
	}
	return err
}

// maxHops bounds the links followed while explaining, as the kernel does.
const maxHops = 40

// escape finds the first link on the way to name whose target leaves the
// root or is absolute; nil when there is none.
func (f *FS) escape(name string) *EscapeError {
	todo := strings.Split(path.Clean(filepath.ToSlash(name)), "/")
	var done []string // resolved components, no links among them
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".", "":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := path.Join(append(done[:len(done):len(done)], c)...)
		fi, err := f.root.Lstat(filepath.FromSlash(p))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		target, err := f.root.Readlink(filepath.FromSlash(p))
		if hops++; err != nil || hops > maxHops {
			return nil
		}
		if path.IsAbs(target) || filepath.IsAbs(target) {
			return &EscapeError{Name: name, Link: p, Target: target}
		}
		if joined := path.Join(path.Join(done...), filepath.ToSlash(target)); joined == ".." || strings.HasPrefix(joined, "../") {
			return &EscapeError{Name: name, Link: p, Target: target}
		}
		todo = append(strings.Split(filepath.ToSlash(target), "/"), todo...)
	}
	return nil
}
