package workspace

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Changes is what one sync sends: files to write, paths to delete and
// folders to remove once empty.
type Changes struct {
	Put    []string
	Delete []string
	Rmdir  []string
}

// Empty reports whether there is nothing to send.
func (c Changes) Empty() bool { return len(c.Put) == 0 && len(c.Delete) == 0 }

// Diff compares what the workspace holds (remote, the manifest of the last
// complete sync) with the local tree.
func Diff(remote, local Manifest) Changes {
	var c Changes
	for p, e := range local {
		if r, ok := remote[p]; !ok || r.Hash != e.Hash || r.Link != e.Link || r.Mode != e.Mode {
			c.Put = append(c.Put, p)
		}
	}
	localDirs := dirsOf(local)
	gone := map[string]bool{}
	for p := range remote {
		if _, ok := local[p]; ok {
			continue
		}
		c.Delete = append(c.Delete, p)
		for d := path.Dir(p); d != "." && !localDirs[d]; d = path.Dir(d) {
			gone[d] = true
		}
	}
	for d := range gone {
		c.Rmdir = append(c.Rmdir, d)
	}
	slices.Sort(c.Put)
	slices.Sort(c.Delete)
	// Deepest first, so that a parent is empty when its turn comes.
	slices.SortFunc(c.Rmdir, func(a, b string) int {
		if n := strings.Count(b, "/") - strings.Count(a, "/"); n != 0 {
			return n
		}
		return strings.Compare(a, b)
	})
	return c
}

func dirsOf(m Manifest) map[string]bool {
	out := map[string]bool{}
	for p := range m {
		for d := path.Dir(p); d != "." && !out[d]; d = path.Dir(d) {
			out[d] = true
		}
	}
	return out
}

// Files of StateDir that one sync writes: the lists it applies, and the
// manifests it leaves for the next.
const (
	deleteList   = StateDir + "/delete"
	rmdirList    = StateDir + "/rmdir"
	manifestFile = StateDir + "/manifest.json"
	manifestNext = StateDir + "/manifest.next"
	pendingFile  = StateDir + "/pending.json"
)

// applyScript runs in the helper, in the workspace ($1), with the archive
// on stdin. The archive's first entry is the pending manifest: every path
// the sync may touch, with no hash where the content is in doubt. It stays
// until the sync ends, so after an interruption the next sync reads it,
// sends every path in doubt again and deletes those gone from the tree.
const applyScript = `set -e
cd "$1"
mkdir -p ` + StateDir + `
tar -xf -
if [ -s ` + deleteList + ` ]; then xargs -0 rm -f -- < ` + deleteList + `; fi
if [ -s ` + rmdirList + ` ]; then xargs -0 rmdir -- < ` + rmdirList + ` 2>/dev/null || true; fi
rm -f ` + deleteList + ` ` + rmdirList + `
mv -f ` + manifestNext + ` ` + manifestFile + `
rm -f ` + pendingFile + `
`

// readScript prints the pending manifest, a NUL byte and the manifest of
// the last complete sync; either may be missing.
const readScript = `cd "$1"; cat ` + pendingFile + ` 2>/dev/null; printf '\0'; cat ` + manifestFile + ` 2>/dev/null; true`

// pending is what the workspace may hold while a sync runs: the tree's
// entries, with no hash for those being written or deleted.
func pending(remote, local Manifest, c Changes) Manifest {
	out := make(Manifest, len(local)+len(c.Delete))
	for p, e := range local {
		out[p] = e
	}
	for _, p := range c.Put {
		out[p] = Entry{Mode: local[p].Mode}
	}
	for _, p := range c.Delete {
		out[p] = Entry{Mode: remote[p].Mode}
	}
	return out
}

// writeArchive writes the tar stream of one sync: the changed files of the
// tree, then the lists and the new manifest.
func writeArchive(w io.Writer, root string, remote, local Manifest, c Changes) error {
	tw := tar.NewWriter(w)
	pend, err := json.Marshal(pending(remote, local, c))
	if err != nil {
		return err
	}
	if err := addBytes(tw, pendingFile, pend); err != nil {
		return err
	}
	for _, p := range c.Put {
		if err := addEntry(tw, root, p, local[p]); err != nil {
			return err
		}
	}
	man, err := json.Marshal(local)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{deleteList, nulList(c.Delete)},
		{rmdirList, nulList(c.Rmdir)},
		{manifestNext, man},
	} {
		if err := addBytes(tw, f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func nulList(paths []string) []byte {
	var b bytes.Buffer
	for _, p := range paths {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.Bytes()
}

var epoch = time.Unix(0, 0)

func addBytes(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// addEntry adds one file or link. A file is read as it is now: when it
// changed since the scan, the next scan sees it again.
func addEntry(tw *tar.Writer, root, p string, e Entry) error {
	if e.Link != "" {
		return tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeSymlink, Linkname: e.Link, Mode: 0o777, ModTime: epoch})
	}
	full := filepath.Join(root, filepath.FromSlash(p))
	data, err := os.ReadFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone since the scan: the next one deletes it
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", full, err)
	}
	hdr := &tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: int64(e.Mode.Perm()), Size: int64(len(data)), ModTime: time.Now()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}
