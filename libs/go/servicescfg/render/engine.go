package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/rootfs"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

const (
	// maxDepth bounds nested include and tpl calls, like Helm's limit: an
	// include that calls itself would otherwise overflow the stack.
	maxDepth = 1000
	// reservedPrefix starts the names of the engine's own templates; a define
	// may not use it.
	reservedPrefix = "\x00"
	mainName       = reservedPrefix + "main"
	// tplFile is the file name under which tpl parses its text; errors in it
	// are reported at the tpl call instead.
	tplFile = reservedPrefix + "tpl"
	// textName is the name every rendered text is parsed under, so that its
	// parse can be shared by texts of other names (see cached) and no define
	// can take it; render puts the text's own name into its errors. A set
	// holds one rendered text at a time.
	textName = reservedPrefix + "text"
)

// Engine renders templates against one stack's partials. The partials are
// read and parsed once, by New; template files are read when rendered, and a
// text rendered more than once (the same manifest under many paths, a `when`
// repeated across nodes) is parsed once. An Engine is safe for concurrent
// use.
type Engine struct {
	root string
	// dir is root opened as an os.Root: every template is read through
	// it (dirErr when it could not be opened).
	dir      *rootfs.FS
	dirErr   error
	files    []string
	partials map[string]partial
	// unresolved lists, for a partial, the templates it reaches by a constant
	// name that no partial defines: each render must define them itself.
	unresolved map[string][]ref
	funcs      template.FuncMap
	// base holds every partial; renders clone it once per set of names they
	// define and reuse the clones through pools (see acquire).
	base  *template.Template
	pools sync.Map // unit.key -> *sync.Pool of *instance
	cache textCache
	// pure are the partials whose include output may be remembered (memo.go).
	pure map[string]bool
	// weights are what running each partial costs, in steps (steps.go).
	weights map[string]int64
	lim     Limits
}

// partial is a named template defined by a partial file.
type partial struct {
	tree *parse.Tree
	pos  diag.Pos
}

// Option configures New.
type Option func(*options)

type options struct {
	glob   func(pattern string) ([]string, error)
	pos    func(entry int) diag.Pos
	files  *rootfs.FS
	limits Limits
}

// WithGlob resolves templates.partials entries with glob (a loaded stack's
// cached Stack.Glob) instead of stack.GlobRoot under the root. glob receives the entry
// as written and returns paths relative to the root, in any order; New still
// rejects paths outside the root and entries that match nothing. An error it
// returns is reported as is when it is a diagnostic.
func WithGlob(glob func(pattern string) ([]string, error)) Option {
	return func(o *options) { o.glob = glob }
}

// WithFiles reads templates through files, the stack root already open
// (stack.Stack.Files), instead of opening the root again: one os.Root, and
// its open folders, shared by the loader's globs and the renders. files must
// be the root given to New.
func WithFiles(files *rootfs.FS) Option {
	return func(o *options) { o.files = files }
}

// WithPositions places errors about templates.partials entry i (a glob that
// matches nothing, is invalid or leaves the root) at pos(i), typically the
// entry's line in services.yaml.
func WithPositions(pos func(entry int) diag.Pos) Option {
	return func(o *options) { o.pos = pos }
}

// New reads and parses the partials of the stack rooted at root (an absolute
// directory). Each entry of partials is a path or glob relative to root that
// must match at least one file; the files of one entry are taken in sorted
// order. Every named template they define is available to every render, and
// no name may be defined twice. All problems found are returned at once, as a
// diag.List.
func New(root string, partials []string, opts ...Option) (*Engine, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if !filepath.IsAbs(root) {
		return nil, diag.List{{Msg: fmt.Sprintf("stack root %q is not an absolute path", root)}}
	}
	e := &Engine{
		root:       filepath.Clean(root),
		partials:   map[string]partial{},
		unresolved: map[string][]ref{},
		funcs:      sharedFuncs(),
		lim:        o.limits.orDefault(),
	}
	e.cache.seed = maphash.MakeSeed()
	if e.dir = o.files; e.dir == nil {
		e.dir, e.dirErr = rootfs.Open(e.root)
	}
	var errs diag.List
	var units []*unit
	for _, file := range e.resolve(partials, &o, &errs) {
		text, err := e.read(file)
		if err != nil {
			errs.Append(err)
			continue
		}
		u, perrs := e.parseUnit(file, file, text)
		errs = append(errs, perrs...)
		if u != nil {
			units = append(units, u)
			e.files = append(e.files, file)
		}
	}
	for _, u := range units {
		for _, name := range u.sortedDefs() {
			pos := diag.Pos{File: u.name, Line: u.lines[name]}
			if p, dup := e.partials[name]; dup {
				errs.Add(pos, "template %q already defined in %s", name, p.pos)
				continue
			}
			e.partials[name] = partial{tree: u.defs[name], pos: pos}
		}
	}
	e.linkPartials(units)
	e.markPure(units)
	var trees []*parse.Tree
	for _, u := range units {
		trees = append(trees, u.main)
		for _, t := range u.defs {
			trees = append(trees, t)
		}
	}
	called := templateCalls(trees...)
	e.weights = map[string]int64{}
	for i, u := range units {
		u.instrument(int64(i+2), func(name string) bool { return called[name] })
		for name, w := range u.weights {
			if p, ok := e.partials[name]; ok && p.tree == u.defs[name] {
				e.weights[name] = w
			}
		}
	}
	e.base, _ = sharedBase().Clone() // Clone never fails
	for name, p := range e.partials {
		if _, err := e.base.AddParseTree(name, p.tree); err != nil {
			errs.Add(p.pos, "%v", err)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// Partials returns the partial files read by New, relative to the root, in
// the order they were read.
func (e *Engine) Partials() []string { return slices.Clone(e.files) }

// RenderFile renders the template file at path (relative to the stack root,
// or absolute inside it) with data, usually a Context. The file's own defines are visible only to
// this render. Errors are a diag.List placed at PATH:LINE. A render stops
// when ctx is done, returning an error that wraps ctx.Err(), and fails at
// the template's position when it exceeds its Limits.
func (e *Engine) RenderFile(ctx context.Context, path string, data any) ([]byte, error) {
	name, err := e.rel(path)
	if err != nil {
		return nil, err
	}
	text, err := e.read(name)
	if err != nil {
		return nil, err
	}
	b, errs := e.render(ctx, name, text, data)
	return b, result(ctx, name, errs)
}

// RenderString renders text, e.g. a prompt or a hook template, with the same
// partials and functions as RenderFile. name labels the text in errors:
// NAME:LINE, LINE counted from the start of text.
func (e *Engine) RenderString(ctx context.Context, name, text string, data any) (string, error) {
	b, errs := e.render(ctx, name, text, data)
	return string(b), result(ctx, name, errs)
}

// result is the error of a render: ctx's when it stopped the render.
func result(ctx context.Context, name string, errs diag.List) error {
	if len(errs) > 0 && ctx.Err() != nil {
		return fmt.Errorf("render %s: %w", name, ctx.Err())
	}
	return errs.Err()
}

// RenderAt renders text found inside another file, such as a `when` or a
// namespaceTemplate of services.yaml, whose position is pos: problems in the
// text are placed at pos (the line moved down for a multi-line text, the
// column kept on the first line).
func (e *Engine) RenderAt(ctx context.Context, pos diag.Pos, text string, data any) (string, error) {
	name := pos.File
	if name == "" {
		name = "text"
	}
	b, errs := e.render(ctx, name, text, data)
	for i, d := range errs {
		if d.Pos.File != name {
			if len(d.Via) == 1 && d.Via[0] == name && pos.Line > 0 {
				at := *d
				at.Via = []string{pos.String()} // the value in services.yaml
				errs[i] = &at
			}
			continue
		}
		at := *d
		at.Pos = diag.Pos{File: pos.File, Line: pos.Line + d.Pos.Line - 1}
		if d.Pos.Line <= 1 {
			at.Pos.Col = pos.Col
		}
		if pos.Line == 0 {
			at.Pos.Line = 0
		}
		errs[i] = &at
	}
	return string(b), result(ctx, name, errs)
}

// CheckFile parses the template file at path and checks it against the
// partials without rendering it: syntax, defines that clash with a partial,
// templates called by a name nothing defines (in untaken branches too),
// functions that are not available.
func (e *Engine) CheckFile(path string) error {
	name, err := e.rel(path)
	if err != nil {
		return err
	}
	text, err := e.read(name)
	if err != nil {
		return err
	}
	_, errs := e.prepare(name, text)
	return errs.Err()
}

func (e *Engine) prepare(name, text string) (*unit, diag.List) {
	u, errs := e.parseUnit(name, textName, text)
	if len(errs) > 0 {
		return nil, errs
	}
	if errs := e.link(u, nil); len(errs) > 0 {
		return nil, errs
	}
	called := templateCalls(append(slices.Collect(maps.Values(u.defs)), u.main)...)
	u.instrument(fileText, func(name string) bool { return called[name] })
	return u, nil
}

func (e *Engine) render(ctx context.Context, name, text string, data any) ([]byte, diag.List) {
	u, errs := e.cached(name, text)
	if len(errs) > 0 {
		return nil, via(cutAll(errs, e.lim.ErrorText), name)
	}
	in := e.acquire(ctx, u)
	b := in.b
	b.file, b.line = textName, 1
	if err := b.step(u.weight); err != nil {
		in.release()
		return nil, diag.List{{Pos: diag.Pos{File: name, Line: 1}, Msg: err.Error()}}
	}
	var buf bytes.Buffer
	buf.Grow(max(int(u.outLen.Load())+64, len(text)+len(text)/2))
	if c, ok := data.(Context); ok {
		// By reference, so that include can recognise the same context.
		data = &c
	}
	in.top = limitedWriter{w: &buf, b: b}
	err := in.t.Execute(&in.top, data)
	if err != nil {
		err = b.place(err)
	}
	in.release()
	if err != nil {
		d := e.execError(err)
		if len(d.Msg) > e.lim.ErrorText {
			d = &diag.Diagnostic{Pos: d.Pos, Msg: cut(d.Msg, e.lim.ErrorText), Hint: d.Hint, Via: d.Via}
		}
		switch {
		case d.Pos.File == textName:
			at := *d
			at.Pos.File = name
			d = &at
		default:
			return nil, via(diag.List{d}, name)
		}
		return nil, diag.List{d}
	}
	u.outLen.Store(int64(buf.Len()))
	return buf.Bytes(), nil
}

// via marks the problems that lie in another file than name (a partial it
// includes) as reached by rendering name.
func via(errs diag.List, name string) diag.List {
	out := make(diag.List, len(errs))
	for i, d := range errs {
		out[i] = d
		if d.Pos.File != "" && d.Pos.File != name && len(d.Via) == 0 {
			at := *d
			at.Via = []string{name}
			out[i] = &at
		}
	}
	return out
}

// rel turns a template path into the slash-separated path relative to the
// root that names it in errors, refusing paths outside the root.
func (e *Engine) rel(p string) (string, error) {
	r := p
	if filepath.IsAbs(p) {
		if x, err := filepath.Rel(e.root, p); err == nil {
			r = x
		}
	}
	if !filepath.IsLocal(r) {
		return "", diag.List{{Pos: diag.Pos{File: filepath.ToSlash(p)}, Msg: "template is outside the stack root"}}
	}
	return filepath.ToSlash(filepath.Clean(r)), nil
}

// read reads a file under the root through an os.Root, as the stack's Glob
// resolves it: symbolic links are followed only while they stay inside the
// root, and only a regular file of at most rootfs.MaxFileSize is read.
func (e *Engine) read(name string) (string, error) {
	if e.dirErr != nil {
		return "", diag.List{{Pos: diag.Pos{File: name}, Msg: fmt.Sprintf("cannot read template: %v", e.dirErr)}}
	}
	b, err := e.dir.ReadFile(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", diag.List{{Pos: diag.Pos{File: name}, Msg: fmt.Sprintf("cannot read template: %v", err)}}
	}
	return string(b), nil
}

// resolve expands the partials entries into files, relative to the root,
// each file once.
func (e *Engine) resolve(entries []string, o *options, errs *diag.List) []string {
	glob := o.glob
	if glob == nil {
		// The stack's own rules for paths and globs, ** included.
		glob = func(entry string) ([]string, error) { return stack.GlobRoot(e.root, entry) }
	}
	var files []string
	seen := map[string]bool{}
	for i, entry := range entries {
		var pos diag.Pos
		if o.pos != nil {
			pos = o.pos(i)
		}
		matches, err := glob(entry)
		if err != nil {
			msg := err.Error()
			switch {
			case isDiag(err):
				errs.Append(err)
				continue
			case !strings.Contains(msg, strconv.Quote(entry)):
				msg = strconv.Quote(entry) + ": " + msg
			}
			errs.Add(pos, "partial %s", msg)
			continue
		}
		var found []string
		for _, m := range matches {
			name, err := e.rel(m)
			if err != nil {
				errs.Add(pos, "%s %q matches %s, outside the stack root", noun(entry), entry, m)
				continue
			}
			found = append(found, name)
		}
		if len(matches) == 0 {
			errs.Add(pos, "%s %q matches no file", noun(entry), entry)
		}
		slices.Sort(found)
		for _, f := range found {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files
}

// noun names a partials entry in messages, as the stack's validator does.
func noun(entry string) string {
	if strings.ContainsAny(entry, `*?[\`) {
		return "partial pattern"
	}
	return "partial"
}
