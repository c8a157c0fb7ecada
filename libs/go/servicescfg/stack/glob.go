package stack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ErrOutsideRoot is wrapped by Glob's errors for patterns that are absolute
// or climb out of the stack root with "..".
var ErrOutsideRoot = errors.New("path leaves the stack root")

// ErrTooManyFolders is wrapped by Glob's errors for patterns whose wildcard
// segments reach more than maxGlobFolders folders.
var ErrTooManyFolders = errors.New("pattern reaches too many folders")

// maxGlobFolders bounds the folders a pattern's segment may reach, so that
// resolving a pattern over a loop of symbolic links ends at once instead of
// after minutes (within a second or two here).
const maxGlobFolders = 20000

// PatternError is a path or glob of services.yaml that cannot be resolved.
// It wraps filepath.ErrBadPattern or ErrOutsideRoot.
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
// *PatternError wrapping ErrOutsideRoot. The check is lexical: symbolic links
// inside the root are followed wherever they point.
//
// Results are cached for the life of a loaded stack: validation and every
// environment's render resolve the same patterns, and directories are read
// once. Load the stack again to see files added since.
func (s *Stack) Glob(pattern string) ([]string, error) {
	if s.globs == nil {
		return s.glob(pattern)
	}
	type result struct {
		files []string
		err   error
	}
	if r, ok := s.globs.Load(pattern); ok {
		r := r.(result)
		return slices.Clone(r.files), r.err
	}
	files, err := s.glob(pattern)
	s.globs.Store(pattern, result{files: slices.Clone(files), err: err})
	return files, err
}

func (s *Stack) glob(pattern string) ([]string, error) { return GlobRoot(s.Root, pattern) }

// GlobRoot is Glob for the stack rooted at root ("" for the working
// directory), without a cache: what the renderer uses for a root of
// templates given without a stack.
func GlobRoot(root, pattern string) ([]string, error) {
	clean, err := checkPattern(pattern)
	if err != nil {
		return nil, err
	}
	if root == "" {
		root = "."
	}
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
			if err := expand(root, dir, seg, last, next); err != nil {
				var bl *brokenLinkError
				if errors.As(err, &bl) {
					return nil, &PatternError{Pattern: pattern, Problem: "matches " + bl.path + ", a symbolic link that leads nowhere", Err: err}
				}
				return nil, fmt.Errorf("resolve pattern %q: %w", pattern, err)
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

// expand adds to out what segment seg matches under dir (root-relative): files
// when seg is the last segment, directories otherwise.
func expand(root, dir, seg string, last bool, out map[string]bool) error {
	abs := filepath.Join(root, filepath.FromSlash(dir))
	switch {
	case seg == "**":
		// The trailing separator makes WalkDir follow a root that is a
		// symbolic link to a directory.
		start := abs + string(filepath.Separator)
		return filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || isNotDir(err) {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if rel == "." {
				rel = ""
			}
			if e.IsDir() {
				if p != start && strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir
				}
				if !last {
					out[rel] = true
				}
				return nil
			}
			if last {
				if err := checkLink(p, rel, e); err != nil {
					return err
				}
				if isFile(p, e) {
					out[rel] = true
				}
			}
			return nil
		})
	case !hasMeta(seg):
		p := path.Join(dir, seg)
		full := filepath.Join(root, filepath.FromSlash(p))
		fi, err := os.Stat(full)
		if err != nil {
			if last && !errors.Is(err, fs.ErrPermission) {
				if li, lerr := os.Lstat(full); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
					return &brokenLinkError{path: p}
				}
			}
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || isNotDir(err) {
				return nil
			}
			return err
		}
		if last && fi.Mode().IsRegular() || !last && fi.IsDir() {
			out[p] = true
		}
		return nil
	default:
		entries, err := os.ReadDir(abs)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
				return nil
			}
			if errors.Is(err, fs.ErrPermission) {
				// A folder on the way that may not be entered means no
				// match, as when each plain segment was looked up; a
				// folder that is there but may not be listed is an error.
				if _, serr := os.Stat(abs); serr != nil && errors.Is(serr, fs.ErrPermission) {
					return nil
				}
			}
			return err
		}
		for _, e := range entries {
			if ok, _ := path.Match(seg, e.Name()); !ok {
				continue
			}
			p := path.Join(dir, e.Name())
			full := filepath.Join(abs, e.Name())
			if last {
				if err := checkLink(full, p, e); err != nil {
					return err
				}
				if isFile(full, e) {
					out[p] = true
				}
			} else if isDir(full, e) {
				out[p] = true
			}
		}
		return nil
	}
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// brokenLinkError is a symbolic link a pattern matches whose target is
// missing: a file meant to be there, most likely, so it is not skipped
// without a word.
type brokenLinkError struct{ path string }

func (e *brokenLinkError) Error() string { return e.path + ": symbolic link that leads nowhere" }

// checkLink returns a brokenLinkError for a matched entry that is a
// symbolic link to nothing; rel is its root-relative path.
func checkLink(full, rel string, e fs.DirEntry) error {
	if e.Type()&fs.ModeSymlink == 0 {
		return nil
	}
	// A missing target, a loop or a path through a file: it leads nowhere.
	if _, err := os.Stat(full); err != nil && !errors.Is(err, fs.ErrPermission) {
		return &brokenLinkError{path: rel}
	}
	return nil
}

func isFile(p string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode().IsRegular()
	}
	return e.Type().IsRegular()
}

func isDir(p string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	return e.IsDir()
}

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
