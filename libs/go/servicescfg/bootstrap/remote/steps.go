package remote

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Step is one rendered bootstrap step.
type Step struct {
	Name string
	// Script is the rendered script; it runs in bash with the step's folder
	// as its working directory and Files under ./files.
	Script []byte
	Files  []File
	// Vars are set as shell variables of the script (not exported).
	Vars []Var
	// Timeout kills the step's process group when it runs longer (0: none).
	Timeout time.Duration
}

// File is uploaded to files/NAME in the step's folder before it runs.
type File struct {
	// Name is a relative slash path (no "..").
	Name string
	Mode fs.FileMode
	// Path is a local file to upload; Data is used when Path is empty.
	Path string
	Data []byte
}

// Var is one variable a step reads.
type Var struct {
	Name  string
	Value string
	// Secret values are masked in the step's output.
	Secret bool
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	varPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// checkSteps rejects names that could leave the runner's folders.
func checkSteps(project string, steps []Step) error {
	if !namePattern.MatchString(project) {
		return fmt.Errorf("project name %q is not a plain name", project)
	}
	seen := map[string]bool{}
	for _, s := range steps {
		if !namePattern.MatchString(s.Name) {
			return fmt.Errorf("step name %q: use letters, digits, '.', '_' and '-'", s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("step %s is declared twice", s.Name)
		}
		seen[s.Name] = true
		for _, v := range s.Vars {
			if !varPattern.MatchString(v.Name) {
				return fmt.Errorf("step %s: variable name %q is not a shell name", s.Name, v.Name)
			}
		}
		for _, f := range s.Files {
			if f.Name == "" || path.IsAbs(f.Name) || path.Clean(f.Name) != f.Name || strings.HasPrefix(f.Name, "../") || f.Name == ".." {
				return fmt.Errorf("step %s: file name %q must be a clean relative path", s.Name, f.Name)
			}
		}
	}
	return nil
}

// varsBlock is the variables as shell assignments, one per line.
func varsBlock(vars []Var) []byte {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(shellQuote(v.Value))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// upload is a step's folder as a tar stream, with its size and the hash
// of everything the step is made of: script, files and variables.
type upload struct {
	size int64
	hash string
}

// runnerVersion is part of every step's hash: a new runner runs steps again.
const runnerVersion = "1"

// measure reads the step's files once: the tar's size and the step's hash.
func measure(s Step) (upload, error) {
	h := sha256.New()
	fmt.Fprintf(h, "codex-bootstrap step %s\n", runnerVersion)
	fmt.Fprintf(h, "script %d\n", len(s.Script))
	h.Write(s.Script)
	counter := &countWriter{}
	if err := writeTar(io.MultiWriter(counter), s, h); err != nil {
		return upload{}, err
	}
	vars := append([]Var(nil), s.Vars...)
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	for _, v := range vars {
		fmt.Fprintf(h, "var %s %d\n%s", v.Name, len(v.Value), v.Value)
	}
	return upload{size: counter.n, hash: hex.EncodeToString(h.Sum(nil))}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// writeTar writes the step's folder: step.sh and files/. When sum is not
// nil, each file's name, mode and content go into it too.
func writeTar(w io.Writer, s Step, sum io.Writer) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "step.sh", Mode: 0o700, Size: int64(len(s.Script)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(s.Script); err != nil {
		return err
	}
	for _, f := range s.Files {
		if err := writeFile(tw, f, mtime, sum); err != nil {
			return fmt.Errorf("step %s: %w", s.Name, err)
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, f File, mtime time.Time, sum io.Writer) error {
	var r io.Reader
	size := int64(len(f.Data))
	if f.Path != "" {
		fh, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("file to upload: %w", err)
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("file to upload %s is not a regular file", f.Path)
		}
		size, r = st.Size(), fh
	} else {
		r = strings.NewReader(string(f.Data))
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o600
	}
	if err := tw.WriteHeader(&tar.Header{Name: "files/" + f.Name, Mode: int64(mode), Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	w := io.Writer(tw)
	if sum != nil {
		fmt.Fprintf(sum, "file %s %o %d\n", f.Name, mode, size)
		w = io.MultiWriter(tw, sum)
	}
	n, err := io.Copy(w, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Name, err)
	}
	if n != size {
		return fmt.Errorf("upload %s: it changed while being read", f.Name)
	}
	return nil
}

// stdinHeader is the first line the runner reads.
func stdinHeader(tarSize int64, vars []byte) string {
	return strconv.FormatInt(tarSize, 10) + " " + strconv.Itoa(len(vars)) + "\n"
}
