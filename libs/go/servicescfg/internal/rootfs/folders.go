package rootfs

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
)

// An os.Root opens a path one component at a time (an openat and a close
// per folder on the way), and every file it opens is an *os.File set up for
// the poller (which a regular file refuses) with a finalizer: reading the
// three manifests of a service in deploy/NAME/ through the stack's root
// walks deploy/ and deploy/NAME/ three times, and a folder read through it
// costs a stat of every entry. Where the system allows (openat.go), an FS
// keeps the folders it read from last open, and opens a file or a folder
// named in a kept folder with one openat of that single name, relative to
// the folder, with O_NOFOLLOW: the system call an os.Root makes for the last
// component of a path.
//
// What is read that way is what the root would read: a kept folder was
// opened through the root (or, by one name without following a link, in a
// kept folder), and a name opened in it cannot leave it. Any error, among
// them a link (which the root follows while it stays inside the stack) and a
// folder closed meanwhile, sends the call through the stack root, which
// decides and explains. A folder replaced by a link after it was opened is
// read as it was when opened, inside the root, as the root itself is.

// maxFolders bounds the folders an FS keeps open, a file descriptor each,
// for as long as the FS is open (a loaded stack keeps its own): a render
// worker reads a node's files one after the other, so a few suffice.
const maxFolders = 16

type folders struct {
	mu   sync.Mutex
	open map[string]*folder
	// lru links the open folders, most recently used first: lru.next is
	// the newest, lru.prev the one to close next.
	lru folder
}

type folder struct {
	dir        string
	file       *os.File
	raw        syscall.RawConn
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
	if !keepFolders || !fs.ValidPath(name) { // clean, relative, no ".."
		return "", "", false
	}
	i := strings.LastIndexByte(name, '/')
	if i <= 0 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// folder returns the folder dir (clean, root-relative, slash-separated),
// from the kept ones or opened now; nil when it cannot be opened (the
// caller then goes through the root).
func (f *FS) folder(dir string) *folder {
	c := &f.folders
	c.mu.Lock()
	if d, ok := c.open[dir]; ok {
		c.use(d)
		c.mu.Unlock()
		return d
	}
	c.mu.Unlock()

	var file *os.File
	if i := strings.LastIndexByte(dir, '/'); i > 0 {
		if p := f.folder(dir[:i]); p != nil {
			if fd, err := p.openat(dir[i+1:], syscall.O_RDONLY|oDirectory); err == nil {
				file = os.NewFile(uintptr(fd), path.Join(f.dir, dir))
			}
		}
	}
	if file == nil {
		// In the root itself, or a link: the root decides.
		var err error
		if file, err = f.root.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK|oDirectory, 0); err != nil {
			return nil
		}
	}
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.open[dir]; ok { // opened meanwhile by another read
		file.Close()
		return d
	}
	if c.open == nil {
		c.open = map[string]*folder{}
		c.lru.prev, c.lru.next = &c.lru, &c.lru
	}
	if len(c.open) >= maxFolders {
		c.evict()
	}
	d := &folder{dir: dir, file: file, raw: raw}
	c.use(d)
	c.open[dir] = d
	return d
}

// readFile reads the regular file base of the folder.
func (d *folder) readFile(base string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a named pipe would otherwise wait for a writer.
	fd, err := d.openat(base, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return readFd(fd, limit)
}

// readDir lists the folder base of the folder, sorted by name; name is its
// path from the root.
func (d *folder) readDir(f *FS, base, name string) ([]fs.DirEntry, error) {
	fd, err := d.openat(base, syscall.O_RDONLY|oDirectory)
	if err != nil {
		return nil, err
	}
	// A file of its own, not of a root: entries are typed from the folder
	// itself, not each by a stat.
	entries, err := sortedEntries(os.NewFile(uintptr(fd), base))
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		entries[i] = entry{DirEntry: e, fsys: f, name: path.Join(name, e.Name())}
	}
	return entries, nil
}

// entry is an entry of a folder listed by readDir: its Info is read through
// the root (the listing's own would look it up by a path from the working
// directory).
type entry struct {
	fs.DirEntry
	fsys *FS
	name string
}

func (e entry) Info() (fs.FileInfo, error) { return e.fsys.Lstat(e.name) }

// openat opens the single name base in the folder without following a
// link.
func (d *folder) openat(base string, flags int) (int, error) {
	if base == "." || base == ".." || strings.ContainsRune(base, '/') {
		return -1, syscall.EINVAL
	}
	fd := -1
	var err error
	if cerr := d.raw.Control(func(dirfd uintptr) { fd, err = openat(int(dirfd), base, flags) }); cerr != nil {
		return -1, cerr
	}
	return fd, err
}

// evict closes the folder used least recently. A read still using it fails
// and goes through the root.
func (c *folders) evict() {
	d := c.lru.prev
	d.prev.next, d.next.prev = d.next, d.prev
	delete(c.open, d.dir)
	d.file.Close()
}

// closeAll closes the kept folders.
func (c *folders) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dir, d := range c.open {
		d.file.Close()
		delete(c.open, dir)
	}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
}
