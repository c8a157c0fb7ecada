package workspace

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	ignore "github.com/sabhiram/go-gitignore"
)

// StateDir is the folder, at the root of the workspace, where sync keeps its
// manifest. A local tree's own folder of that name is never sent.
const StateDir = ".codex-sync"

// ErrOutsideTree is wrapped by Scan for a symbolic link that leads out of
// the tree: its target would not exist in the workspace, or would expose a
// file the developer did not mean to send.
var ErrOutsideTree = errors.New("leaves the source tree")

// Entry is one file of a tree: a regular file (Hash set) or a symbolic link
// (Link set), with its permission bits.
type Entry struct {
	Hash string      `json:"h,omitempty"`
	Link string      `json:"l,omitempty"`
	Mode fs.FileMode `json:"m"`

	size  int64
	mtime time.Time
}

// Manifest maps slash-separated paths, relative to the tree's root, to
// their entries.
type Manifest map[string]Entry

// Tree is a local source tree and its ignore rules: .gitignore files (at
// the root and in sub-folders) and the root's .dockerignore, as git and
// docker read them. .git and StateDir are never part of it.
type Tree struct {
	Root string
	// cache keeps the hashes of the last scan: a file whose size and
	// modification time did not change is not read again.
	cache Manifest
	// dirs are the folders the last scan walked (not ignored), absolute.
	dirs []string
}

// NewTree returns the tree rooted at dir (made absolute).
func NewTree(dir string) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("source folder %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("source folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source folder %s is not a folder", dir)
	}
	return &Tree{Root: abs}, nil
}

// rules are the ignore patterns in force in one folder: its own
// .gitignore's and every ancestor's, each relative to the folder it came
// from.
type rules []rule

type rule struct {
	base string // folder of the ignore file, slash-separated, "" for the root
	m    *ignore.GitIgnore
}

func (r rules) ignored(rel string, dir bool) bool {
	for _, x := range r {
		p := rel
		if x.base != "" {
			p = strings.TrimPrefix(rel, x.base+"/")
		}
		if dir {
			p += "/"
		}
		if x.m.MatchesPath(p) {
			return true
		}
	}
	return false
}

// Scan walks the tree and returns its manifest. A symbolic link that leads
// out of the tree is an error naming it (wrapping ErrOutsideTree); so is a
// path with a newline, which tar and the helper's shell cannot carry.
func (t *Tree) Scan() (Manifest, error) {
	out := Manifest{}
	t.dirs = t.dirs[:0]
	root, err := loadRules(t.Root, "", nil, ".gitignore", ".dockerignore")
	if err != nil {
		return nil, err
	}
	if err := t.walk("", root, out); err != nil {
		return nil, err
	}
	t.cache = out
	return out, nil
}

func (t *Tree) walk(rel string, r rules, out Manifest) error {
	dir := filepath.Join(t.Root, filepath.FromSlash(rel))
	t.dirs = append(t.dirs, dir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		return nil // deleted while the scan ran: the next scan sees it gone
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, de := range entries {
		name := de.Name()
		p := path.Join(rel, name)
		if strings.ContainsAny(p, "\n\x00") {
			return fmt.Errorf("%q: a name with a newline cannot be synced; rename it or ignore it in .gitignore", p)
		}
		if rel == "" && (name == ".git" || name == StateDir) {
			continue
		}
		if name == ".git" || r.ignored(p, de.IsDir()) {
			continue
		}
		if de.IsDir() {
			sub, err := loadRules(filepath.Join(dir, name), p, r, ".gitignore")
			if err != nil {
				return err
			}
			if err := t.walk(p, sub, out); err != nil {
				return err
			}
			continue
		}
		e, ok, err := t.entry(p, de)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while the scan ran
		}
		if err != nil {
			return err
		}
		if ok {
			out[p] = e
		}
	}
	return nil
}

// entry reads one file or link; other kinds (sockets, devices) are skipped.
func (t *Tree) entry(rel string, de fs.DirEntry) (Entry, bool, error) {
	full := filepath.Join(t.Root, filepath.FromSlash(rel))
	info, err := de.Info()
	if err != nil {
		return Entry{}, false, err
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		if err != nil {
			return Entry{}, false, err
		}
		if err := t.inside(rel, target); err != nil {
			return Entry{}, false, err
		}
		return Entry{Link: target, Mode: 0o777}, true, nil
	case !info.Mode().IsRegular():
		return Entry{}, false, nil
	}
	e := Entry{Mode: info.Mode().Perm(), size: info.Size(), mtime: info.ModTime()}
	if old, ok := t.cache[rel]; ok && old.Hash != "" && old.size == e.size && old.mtime.Equal(e.mtime) {
		e.Hash = old.Hash
		return e, true, nil
	}
	h, err := hashFile(full)
	if err != nil {
		return Entry{}, false, err
	}
	e.Hash = h
	return e, true, nil
}

// inside checks that a link at rel with target stays in the tree, the
// target resolved on disk too (a link to a link that leaves it is refused).
func (t *Tree) inside(rel, target string) error {
	full := filepath.Join(t.Root, filepath.FromSlash(rel))
	lexical := target
	if !filepath.IsAbs(lexical) {
		lexical = filepath.Join(filepath.Dir(full), target)
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		resolved = lexical // a dangling link: judge it by its text
	}
	root, err := filepath.EvalSymlinks(t.Root)
	if err != nil {
		root = t.Root
	}
	for _, p := range []struct{ path, root string }{{lexical, t.Root}, {resolved, root}} {
		r, err := filepath.Rel(p.root, p.path)
		if err != nil || r == ".." || strings.HasPrefix(r, "../") || filepath.IsAbs(target) {
			return fmt.Errorf("%s: symbolic link to %s %w %s; remove it or ignore it in .gitignore", rel, target, ErrOutsideTree, t.Root)
		}
	}
	return nil
}

// loadRules adds the ignore files of one folder to the parent's rules.
func loadRules(dir, rel string, parent rules, names ...string) (rules, error) {
	out := parent
	for _, n := range names {
		lines, err := readLines(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if len(lines) > 0 {
			out = append(out[:len(out):len(out)], rule{base: rel, m: ignore.CompileIgnoreLines(lines...)})
		}
	}
	return out, nil
}

func readLines(p string) ([]string, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
