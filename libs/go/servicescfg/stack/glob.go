package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/rootfs"
)

// ErrOutsideRoot is wrapped by Glob's errors for patterns that are absolute
// or climb out of the stack root with "..", and for symbolic links that
// lead outside it.
var ErrOutsideRoot = rootfs.ErrOutsideRoot

// ErrTooManyFolders is wrapped by Glob's errors for patterns whose wildcard
// segments reach more than maxGlobFolders folders.
var ErrTooManyFolders = errors.New("pattern reaches too many folders")

// maxGlobFolders bounds the folders a pattern's segment may reach, so that
// resolving a pattern over a loop of symbolic links ends at once instead of
// after minutes (within a second or two here).
const maxGlobFolders = 20000

// PatternError is a path or glob of services.yaml that cannot be resolved.
// It wraps filepath.ErrBadPattern or ErrOutsideRoot, or describes a file it
// matches that cannot be read (a link to nothing, a named pipe).
type PatternError struct {
	// Pattern is the entry exactly as written.
	Pattern string
	// Problem completes a sentence about the pattern: "is not a valid glob:
	// missing closing ]", "leaves the stack root".
	Problem string
	Err     error
}

func (e *PatternError) Error() string { return fmt.Sprintf("pattern %q %s", e.Pattern, e.Problem) }
func (e *PatternError) Unwrap() error { return e.Err }

// Glob resolves a path or glob of services.yaml against the stack root and
// returns the matching regular files (symbolic links to files included) as
// sorted, root-relative, slash-separated paths. It is the one place where
// patterns of a stack are resolved: the loader, the renderer and the planner
// all call it.
//
// Patterns are slash-separated and use path.Match syntax per segment (*, ?,
// [...], \ escapes). A segment that is exactly "**" matches zero or more
// directories; it does not descend into directories whose names start with
// "." (such as .git) nor follow symbolic links to directories. A pattern
// without meta characters is a plain path. Directories never match.
//
// A pattern that matches nothing returns an empty list and no error. An
// invalid pattern returns a *PatternError wrapping filepath.ErrBadPattern; an
// absolute pattern, or one whose ".." climbs out of the root, returns a
// *PatternError wrapping ErrOutsideRoot. Every file system access goes
// through an os.Root opened at the stack root (see Files), so symbolic links
// are followed only while they stay inside it: a pattern that reaches a link
// leading outside the root (or by an absolute path) returns a *PatternError
// wrapping ErrOutsideRoot that names the link and its target, and so does
// one that matches a link leading nowhere or a file that is not a regular
// one (a named pipe, a device), instead of leaving the file out.
//
// Results are cached for the life of a loaded stack: validation and every
// environment's render resolve the same patterns, and directories are read
// once. Load the stack again to see files added since.
func (s *Stack) Glob(pattern string) ([]string, error) {
	return s.globContext(context.Background(), pattern)
}

// globContext is Glob, stopped between two folders when ctx is done (an
// error wrapping ctx.Err(), not cached).
func (s *Stack) globContext(ctx context.Context, pattern string) ([]string, error) {
	if s.globs == nil {
		return s.glob(ctx, pattern)
	}
	type result struct {
		files []string
		err   error
	}
	if r, ok := s.globs.Load(pattern); ok {
		r := r.(result)
		return slices.Clone(r.files), r.err
	}
	files, err := s.glob(ctx, pattern)
	if ctx.Err() == nil {
		s.globs.Store(pattern, result{files: slices.Clone(files), err: err})
	}
	return files, err
}

func (s *Stack) glob(ctx context.Context, pattern string) ([]string, error) {
	files, err := s.globUncached(ctx, pattern)
	if cerr := ctx.Err(); cerr != nil {
		return nil, fmt.Errorf("resolve pattern %q: %w", pattern, cerr)
	}
	return files, err
}

func (s *Stack) globUncached(ctx context.Context, pattern string) ([]string, error) {
	clean, err := checkPattern(pattern)
	if err != nil {
		return nil, err
	}
	fsys, err := s.Files()
	if err != nil {
		return nil, fmt.Errorf("resolve pattern %q: %w", pattern, err)
	}
	return globIn(ctx.Done(), fsys, pattern, clean)
}

// GlobRoot is Glob for the stack rooted at root ("" for the working
// directory), without a cache: what the renderer uses for a root of
// templates given without a stack. It reads through an os.Root opened at
// root, as Glob does.
func GlobRoot(root, pattern string) ([]string, error) {
	clean, err := checkPattern(pattern)
	if err != nil {
		return nil, err
	}
	if root == "" {
		root = "."
	}
	fsys, err := rootfs.Open(root)
	if err != nil {
		return nil, fmt.Errorf("resolve pattern %q: %w", pattern, err)
	}
	defer fsys.Close()
	return globIn(nil, fsys, pattern, clean)
}

// globIn resolves pattern (checked and cleaned as clean) inside fsys; it
// stops between two folders when done is closed, with errStopped.
func globIn(done <-chan struct{}, fsys *rootfs.FS, pattern, clean string) ([]string, error) {
	segs := strings.Split(clean, "/")
	// Collapse runs of "**": "**/**" matches what "**" does, at a far
	// higher cost.
	segs = slices.CompactFunc(segs, func(a, b string) bool { return a == "**" && b == "**" })
	dirs := []string{""}
	var files []string
	for i, seg := range segs {
		last := i == len(segs)-1
		if !last && seg != "**" && !hasMeta(seg) {
			// A plain directory name: whether it exists shows when the
			// next segment reads it, so it costs no system call here.
			for j, dir := range dirs {
				dirs[j] = path.Join(dir, seg)
			}
			continue
		}
		next := map[string]bool{}
		for _, dir := range dirs {
			if len(next) > maxGlobFolders {
				// Wildcards over links that lead back up (a -> .) reach
				// twice as many folders with every segment.
				return nil, &PatternError{Pattern: pattern, Err: ErrTooManyFolders,
					Problem: fmt.Sprintf("reaches more than %d folders (symbolic links that lead back up?): make it narrower", maxGlobFolders)}
			}
			select {
			case <-done:
				return nil, errStopped
			default:
			}
			if err := expand(done, fsys, dir, seg, last, next); err != nil {
				return nil, patternError(pattern, err)
			}
		}
		if last {
			for p := range next {
				files = append(files, p)
			}
			break
		}
		dirs = dirs[:0]
		for p := range next {
			dirs = append(dirs, p)
		}
		slices.Sort(dirs)
	}
	slices.Sort(files)
	return files, nil
}

// patternError words an error met while resolving pattern.
func patternError(pattern string, err error) error {
	var bl *brokenLinkError
	var esc *rootfs.EscapeError
	var nr *rootfs.NotRegularError
	switch {
	case errors.As(err, &bl):
		return &PatternError{Pattern: pattern, Problem: "matches " + bl.path + ", a symbolic link that leads nowhere", Err: err}
	case errors.As(err, &esc):
		return &PatternError{Pattern: pattern, Problem: "leads outside the stack root: " + esc.Error(), Err: err}
	case errors.As(err, &nr) && !hasMeta(pattern):
		return &PatternError{Pattern: pattern, Problem: "is " + rootfs.Describe(nr.Mode) + ", not a regular file", Err: err}
	case errors.As(err, &nr):
		return &PatternError{Pattern: pattern, Problem: "matches " + nr.Name + ", " + rootfs.Describe(nr.Mode) + ", not a regular file", Err: err}
	}
	return fmt.Errorf("resolve pattern %q: %w", pattern, err)
}

// expand adds to out what segment seg matches under dir (root-relative): files
// when seg is the last segment, directories otherwise.
func expand(done <-chan struct{}, fsys *rootfs.FS, dir, seg string, last bool, out map[string]bool) error {
	switch {
	case seg == "**":
		return walk(done, fsys, dir, last, out)
	case !hasMeta(seg):
		p := path.Join(dir, seg)
		fi, err := fsys.Stat(p)
		if err != nil {
			if errors.Is(err, ErrOutsideRoot) {
				return err
			}
			if last && !errors.Is(err, fs.ErrPermission) {
				if li, lerr := fsys.Lstat(p); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
					return &brokenLinkError{path: p}
				}
			}
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || isNotDir(err) {
				return nil
			}
			return err
		}
		if last {
			return addFile(p, fi.Mode(), out)
		}
		if fi.IsDir() {
			out[p] = true
		}
		return nil
	default:
		entries, err := readDir(fsys, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if ok, _ := path.Match(seg, e.Name()); !ok {
				continue
			}
			if err := match(fsys, path.Join(dir, e.Name()), e, last, out); err != nil {
				return err
			}
		}
		return nil
	}
}

// walk adds what "**" matches under dir: every file below it when it is the
// last segment, else every directory (dir included).
func walk(done <-chan struct{}, fsys *rootfs.FS, dir string, last bool, out map[string]bool) error {
	start := dir
	if start == "" {
		start = "."
	}
	return fsys.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		select {
		case <-done:
			return errStopped
		default:
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || isNotDir(err) {
				return nil
			}
			return err
		}
		rel := p
		if rel == "." {
			rel = ""
		}
		if e.IsDir() {
			if p != start && strings.HasPrefix(e.Name(), ".") {
				return fs.SkipDir
			}
			if !last {
				out[rel] = true
			}
			return nil
		}
		if last {
			return match(fsys, rel, e, true, out)
		}
		return nil
	})
}

// readDir lists dir for a wildcard segment: a folder that is missing, not a
// folder or may not be entered matches nothing; one that is there but may
// not be listed is an error.
func readDir(fsys *rootfs.FS, dir string) ([]fs.DirEntry, error) {
	name := dir
	if name == "" {
		name = "."
	}
	entries, err := fsys.ReadDir(name)
	if err == nil {
		return entries, nil
	}
	if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
		return nil, nil
	}
	if errors.Is(err, fs.ErrPermission) {
		// A folder on the way that may not be entered means no match, as
		// when each plain segment was looked up; a folder that is there but
		// may not be listed is an error.
		if _, serr := fsys.Stat(name); serr != nil && errors.Is(serr, fs.ErrPermission) {
			return nil, nil
		}
	}
	return nil, err
}

// match adds the entry e at p (root-relative) to out when it is what the
// segment looks for: a file for the last segment, else a folder. Links are
// followed inside the root only.
func match(fsys *rootfs.FS, p string, e fs.DirEntry, last bool, out map[string]bool) error {
	mode := e.Type()
	if mode&fs.ModeSymlink != 0 {
		fi, err := fsys.Stat(p)
		switch {
		case errors.Is(err, ErrOutsideRoot):
			return err
		case err != nil && last && !errors.Is(err, fs.ErrPermission):
			// A missing target, a loop or a path through a file: it
			// leads nowhere.
			return &brokenLinkError{path: p}
		case err != nil:
			return nil
		}
		mode = fi.Mode()
	}
	if !last {
		if mode.IsDir() {
			out[p] = true
		}
		return nil
	}
	return addFile(p, mode, out)
}

// addFile adds p, matched by a last segment, when it is a regular file. A
// folder is no match; anything else (a named pipe, a device, a socket) is
// an error, not a file quietly left out.
func addFile(p string, mode fs.FileMode, out map[string]bool) error {
	switch {
	case mode.IsRegular():
		out[p] = true
	case !mode.IsDir():
		return &rootfs.NotRegularError{Name: p, Mode: mode}
	}
	return nil
}

// errStopped ends a glob whose context is done; globContext returns the
// context's error.
var errStopped = errors.New("stopped")

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// brokenLinkError is a symbolic link a pattern matches whose target is
// missing: a file meant to be there, most likely, so it is not skipped
// without a word.
type brokenLinkError struct{ path string }

func (e *brokenLinkError) Error() string { return e.path + ": symbolic link that leads nowhere" }

// hasMeta reports whether a pattern holds glob syntax.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// checkPattern validates a pattern and returns it cleaned, or a *PatternError.
func checkPattern(pattern string) (string, error) {
	if pattern == "" {
		return "", &PatternError{Pattern: pattern, Problem: "is empty", Err: filepath.ErrBadPattern}
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return "", &PatternError{Pattern: pattern, Problem: "is not a valid glob: " + explainBadPattern(pattern), Err: filepath.ErrBadPattern}
	}
	if path.IsAbs(pattern) || filepath.IsAbs(pattern) || filepath.VolumeName(pattern) != "" {
		return "", &PatternError{Pattern: pattern, Problem: "is an absolute path: write it relative to the stack root", Err: ErrOutsideRoot}
	}
	clean := path.Clean(pattern)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", &PatternError{Pattern: pattern, Problem: "leaves the stack root", Err: ErrOutsideRoot}
	}
	return clean, nil
}

// explainBadPattern says what is wrong with a pattern path.Match rejects,
// following its grammar: character classes and backslash escapes.
func explainBadPattern(p string) string {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 >= len(p) {
				return `trailing \ escapes nothing`
			}
			i++
		case '[':
			j, why := scanClass(p, i+1)
			if why != "" {
				return why
			}
			i = j
		}
	}
	return "syntax error in pattern"
}

// scanClass reads a character class whose body starts at i (after "[") and
// returns the index of its closing "]" or why it is malformed.
func scanClass(p string, i int) (int, string) {
	if i < len(p) && p[i] == '^' {
		i++
	}
	for n := 0; ; n++ {
		if i >= len(p) {
			return 0, "missing closing ]"
		}
		if p[i] == ']' {
			if n == 0 {
				return 0, "empty character class []"
			}
			return i, ""
		}
		var ok bool
		if i, ok = classChar(p, i); !ok {
			return 0, classProblem(p, i)
		}
		if i < len(p) && p[i] == '-' {
			if i, ok = classChar(p, i+1); !ok {
				return 0, classProblem(p, i)
			}
		}
	}
}

// classChar reads one possibly escaped character of a class at i and returns
// the index after it; false when there is none (end, "-" or "]").
func classChar(p string, i int) (int, bool) {
	if i >= len(p) || p[i] == '-' || p[i] == ']' {
		return i, false
	}
	if p[i] == '\\' {
		i++
		if i >= len(p) {
			return i, false
		}
	}
	return i + 1, true
}

func classProblem(p string, i int) string {
	switch {
	case i >= len(p):
		return "missing closing ]"
	case p[i] == '-':
		return `unescaped - in character class (write \- for a literal dash)`
	}
	return "character range without an end"
}
