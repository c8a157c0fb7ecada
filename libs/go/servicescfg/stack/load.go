package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/rootfs"
)

// DefaultSecretLength is the length of a generated secret value whose
// generate.length is omitted.
const DefaultSecretLength = 32

// Load reads, decodes and validates a services.yaml. path may name the file
// or the directory holding it (DefaultFile is looked up there); "" means
// DefaultFile in the working directory.
//
// Problems in the file are returned together as a diag.List (sorted), each
// at the position of the offending value, as FILE:LINE:COL. The returned
// stack is non-nil whenever the YAML parsed, even with problems, so callers
// can go on to check what can still be checked (templates, say); it is nil
// only when the file could not be read or is not YAML. Reading errors are
// returned as they are (they wrap fs errors).
//
// Order of checks, as kind does it: apiVersion and kind first (a file of
// another apiVersion or kind is not decoded further), then strict decoding
// (every unknown field and every value of the wrong type), then defaults,
// then Validate.
func Load(path string) (*Stack, error) { return LoadContext(context.Background(), path) }

// LoadContext is Load, stopped when ctx is done: it then returns a nil
// stack and an error wrapping ctx.Err(). Resolving the paths and globs of a
// stack of thousands of nodes is what takes time, and stops between two
// folders.
func LoadContext(ctx context.Context, path string) (*Stack, error) {
	if path == "" {
		path = DefaultFile
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultFile)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read stack: %w", err)
	}
	// The file is read through its root, like every file of the stack: a
	// services.yaml that is a named pipe or a link out of its folder is
	// refused, not followed.
	files := &rootFiles{}
	files.once.Do(func() { files.fs, files.err = rootfs.Open(filepath.Dir(abs)) })
	var data []byte
	err = files.err
	if err == nil {
		data, err = files.fs.ReadFile(filepath.Base(abs))
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = &fs.PathError{Op: "open", Path: path, Err: pe.Err} // as given, not as the root saw it
	}
	if err != nil {
		return nil, fmt.Errorf("read stack: %w", err)
	}
	return load(ctx, displayPath(path, abs), abs, data, files)
}

// LoadBytes is Load for data already in memory. file names the file in
// messages (e.g. "services.yaml"); root is the stack root that paths in the
// file are relative to ("" for the working directory).
func LoadBytes(file, root string, data []byte) (*Stack, error) {
	if file == "" {
		file = DefaultFile
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("stack root %q: %w", root, err)
	}
	return load(context.Background(), file, filepath.Join(abs, filepath.Base(file)), data, &rootFiles{})
}

// displayPath is how a file is named in messages: as given when relative,
// else relative to the working directory when under it, else absolute.
func displayPath(given, abs string) string {
	if !filepath.IsAbs(given) {
		return filepath.Clean(given)
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return rel
		}
	}
	return abs
}

func load(ctx context.Context, file, abs string, data []byte, files *rootFiles) (*Stack, error) {
	s := &Stack{Path: abs, Root: filepath.Dir(abs), File: file, globs: &sync.Map{}}
	s.files.Store(files)
	var errs diag.List

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		s.setDefaults()
		errs.AddHint(diag.Pos{File: file}, "start from apiVersion: "+APIVersion+", kind: "+Kind, "the file is empty")
		return s, errs.Err()
	case err != nil:
		errs = append(errs, yamlError(file, data, err))
		return nil, errs.Err()
	}
	s.doc = &doc
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		errs = append(errs, yamlError(file, data, err))
		return nil, errs.Err()
	default:
		errs.AddHint(s.nodePos(&extra), "keep one stack per file", "the file holds more than one YAML document")
	}

	root := deref(doc.Content[0])
	if root == nil || root.Kind != yaml.MappingNode {
		s.setDefaults()
		if root == nil {
			root = doc.Content[0]
		}
		errs.Add(s.nodePos(root), "the file must hold a mapping with apiVersion, kind, metadata and spec, not %s", describe(root))
		return s, errs.Err()
	}
	if header := s.checkHeader(root); len(header) > 0 {
		// Another apiVersion or kind: its fields mean something else, so
		// decoding them against this model would only add noise.
		s.setDefaults()
		return s, append(errs, header...).Err()
	}

	s.Spec.Runtime = defaultRuntime()
	d := newDecoder(s)
	d.decode(root, reflect.ValueOf(s).Elem(), nil)
	errs = append(errs, d.errs...)
	s.setDefaults()
	if !d.aborted {
		errs = append(errs, s.validate(ctx)...)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	return s, errs.Err()
}

// checkHeader reports an apiVersion or kind this loader does not read.
// Missing ones are left to Validate, so the rest of the file is still checked.
func (s *Stack) checkHeader(root *yaml.Node) diag.List {
	var errs diag.List
	for _, f := range []struct{ key, want string }{{"apiVersion", APIVersion}, {"kind", Kind}} {
		_, v := lookup(root, f.key)
		if v = deref(v); v == nil || v.Kind == yaml.ScalarNode && (v.Value == f.want || v.ShortTag() == "!!null") {
			continue
		}
		if v.Kind != yaml.ScalarNode {
			errs.Add(s.nodePos(v), "%s must be %q, not %s", f.key, f.want, describe(v))
			continue
		}
		errs.AddHint(s.nodePos(v), "this loader reads "+f.key+" "+quote(f.want), "unsupported %s %q", f.key, v.Value)
	}
	return errs
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a yaml.v3 syntax error into a positioned message.
// A tab in a line's indentation gets a hint: yaml.v3 only says that a
// character "cannot start any token".
func yamlError(file string, data []byte, err error) *diag.Diagnostic {
	msg := err.Error()
	pos := diag.Pos{File: file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d := &diag.Diagnostic{Pos: pos, Msg: "invalid YAML: " + msg}
	if at := problemLine(data, pos.Line, msg); at > pos.Line {
		// go-yaml names the line where the enclosing block starts; the
		// line that breaks it, from where its content starts, is the one
		// worth pointing at.
		d.Msg += fmt.Sprintf(" (in the block that starts at line %d)", pos.Line)
		pos.Line = at
		if lines := bytes.Split(data, []byte("\n")); at <= len(lines) {
			line := lines[at-1]
			pos.Col = len(line) - len(bytes.TrimLeft(line, " ")) + 1
		}
		d.Pos = pos
	}
	if lines := bytes.Split(data, []byte("\n")); pos.Line > 0 && pos.Line <= len(lines) {
		line := lines[pos.Line-1]
		if indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]; bytes.IndexByte(indent, '\t') >= 0 {
			d.Hint = "the line is indented with a tab: YAML indentation takes spaces only"
		}
	}
	return d
}

// problemLine finds the line that breaks data with the syntax error msg,
// searching from line from: the shortest prefix of whole lines that fails
// to parse with that same message, by bisection (a prefix of a valid block
// is almost always valid). Prefixes are parsed into nodes, so duplicate
// keys and tags, which are not syntax, do not count. It returns 0 when the
// search does not settle on a line whose prefix fails so while the one
// before does not, and for files too large to parse some twenty times on
// an error path (over 1 MiB).
func problemLine(data []byte, from int, msg string) int {
	if from < 1 || len(data) > 1<<20 {
		return 0
	}
	var ends []int // ends[i]: length of the prefix holding lines 1..i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(lines int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[lines-1]]))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				return false
			}
			if err != nil {
				m := yamlLineRE.FindStringSubmatch(err.Error())
				return m != nil && m[2] == msg
			}
		}
	}
	lo, hi := from, len(ends) // fails(hi) is what brought us here
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > 1 && fails(lo-1) {
		return 0
	}
	return lo
}

func defaultRuntime() map[string]*Runtime {
	return map[string]*Runtime{
		RuntimeNonProd: {HotReload: true},
		RuntimeProd:    {HotReload: false},
	}
}

// setDefaults fills what the file may omit. It leaves alone what the
// validator must see as written (an explicit length of 0 stays 0).
func (s *Stack) setDefaults() {
	if s.Spec.Runtime == nil {
		s.Spec.Runtime = map[string]*Runtime{}
	}
	for name, rt := range defaultRuntime() {
		if s.Spec.Runtime[name] == nil {
			s.Spec.Runtime[name] = rt
		}
	}
	if len(s.Spec.Deploy.Order) == 0 {
		s.Spec.Deploy.Order = slices.Clone(DefaultOrder)
	}
	for _, n := range s.Spec.Infrastructure {
		n.Infrastructure = true
		if n.Group == "" {
			n.Group = GroupStateful
		}
	}
	for _, n := range s.Spec.Services {
		if n.Group == "" {
			n.Group = s.defaultServiceGroup()
		}
	}
	for i, sec := range s.Spec.Secrets {
		for k, v := range sec.Data {
			if v != nil && v.Generate != nil && v.Generate.Length == 0 && !s.has("spec", "secrets", i, "data", k, "generate", "length") {
				v.Generate.Length = DefaultSecretLength
			}
		}
	}
}

// defaultServiceGroup is the group of a service that names none: internal
// when deploy.order has it, else the last group.
func (s *Stack) defaultServiceGroup() string {
	order := s.Order()
	if slices.Contains(order, GroupInternal) {
		return GroupInternal
	}
	return order[len(order)-1]
}

// has reports whether the file declares the value at path.
func (s *Stack) has(path ...any) bool {
	_, _, found := s.locate(path)
	return s.doc != nil && found == len(path)
}
