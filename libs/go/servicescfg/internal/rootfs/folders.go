package rootfs

import (
	"os"
	"path"
	"strings"
	"sync"
)

// An os.Root opens a path one component at a time (an openat and a close
// per folder on the way), so reading the three manifests of a service in
// deploy/NAME/ through the stack's root walks deploy/ and deploy/NAME/ three
// times. An FS keeps the folders it read from last open, each as an os.Root
// opened through its parent's (so through the stack root), and opens a file
// of a kept folder with one openat.
//
// What is read that way is what the root would read: the folder was opened
// inside the root, and its own os.Root refuses anything that leaves it. Any
// error, including a link that leaves the folder but stays inside the stack
// (../other/x.yaml) and a folder closed meanwhile, sends the read through
// the stack root again, which decides and explains. A folder replaced by a
// link after it was opened is read as it was when opened, inside the root,
// as the root itself is.

// maxFolders bounds the folders an FS keeps open: a file descriptor each.
const maxFolders = 64

type folders struct {
	mu   sync.Mutex
	open map[string]*folder
	// lru links the open folders, most recently used first: lru.next is
	// the newest, lru.prev the one to close next.
	lru folder
}

type folder struct {
	dir        string
	root       *os.Root
	prev, next *folder
}

// use moves d to the front of the list (d may be new).
func (c *folders) use(d *folder) {
	if d.next != nil {
		d.prev.next, d.next.prev = d.next, d.prev
	}
	d.prev, d.next = &c.lru, c.lru.next
	c.lru.next.prev = d
	c.lru.next = d
}

// split returns the folder and the base name of a clean, root-relative
// slash path below the root's own folder: "deploy/a/x.yaml" is "deploy/a"
// and "x.yaml". ok is false for paths a kept folder does not serve: in the
// root itself, not clean, or climbing with "..".
func split(name string) (dir, base string, ok bool) {
	if name != path.Clean(name) || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return "", "", false
	}
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// folder returns the folder dir (clean, root-relative, slash-separated)
// opened as an os.Root, from the kept ones or opened now; nil when it cannot
// be opened (the caller then goes through the root).
func (f *FS) folder(dir string) *os.Root {
	c := &f.folders
	c.mu.Lock()
	if d, ok := c.open[dir]; ok {
		c.use(d)
		c.mu.Unlock()
		return d.root
	}
	c.mu.Unlock()

	var r *os.Root
	var err error
	if i := strings.LastIndexByte(dir, '/'); i > 0 {
		if p := f.folder(dir[:i]); p != nil {
			r, err = p.OpenRoot(dir[i+1:])
		}
	}
	if r == nil {
		// In the root itself, or a link that leaves its parent folder: the
		// root decides.
		if r, err = f.root.OpenRoot(dir); err != nil {
			return nil
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.open[dir]; ok { // opened meanwhile by another read
		r.Close()
		return d.root
	}
	if c.open == nil {
		c.open = map[string]*folder{}
		c.lru.prev, c.lru.next = &c.lru, &c.lru
	}
	if len(c.open) >= maxFolders {
		c.evict()
	}
	d := &folder{dir: dir, root: r}
	c.use(d)
	c.open[dir] = d
	return r
}

// evict closes the folder used least recently. A read still using it fails
// with os.ErrClosed and goes through the root.
func (c *folders) evict() {
	d := c.lru.prev
	d.prev.next, d.next.prev = d.next, d.prev
	delete(c.open, d.dir)
	d.root.Close()
}

// closeAll closes the kept folders.
func (c *folders) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir, d := range c.open {
		d.root.Close()
		delete(c.open, dir)
	}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
}
