package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// instance is one template set in use by one render at a time: the partials,
// the names the render's text defines, and include and tpl bound to this set
// (Helm's late binding) with this render's nesting depth.
//
// Cloning the partials costs far more than executing a typical manifest (the
// clone copies sprig's whole function map), so instances are pooled by the
// set of names the text defines (unit.key): most manifests define none and
// share one pool. A render swaps its trees into the instance's slots; since
// the names are the same, nothing one render defined can leak into another.
type instance struct {
	e    *Engine
	pool *sync.Pool
	t    *template.Template // the set's root, holding the text being rendered
	// defs are the slots of the names the text defines; for a tpl child they
	// also hold the caller's names.
	defs  map[string]*template.Template
	tpls  []*template.Template // tpl slots, by depth
	depth int
	memo  map[memoKey]memoEntry // include outputs of pure partials, this render only
	b     *budget               // what this render has spent
	u     *unit                 // the text being rendered
	// writers are the output limits of include and tpl calls, by depth;
	// top is the render's own.
	writers []*limitedWriter
	top     limitedWriter
	own     budget // b for a render (a tpl child shares its parent's)
}

// acquire returns an instance holding u's trees, with a new budget under
// ctx.
func (e *Engine) acquire(ctx context.Context, u *unit) *instance {
	p, ok := e.pools.Load(u.key)
	if !ok {
		p, _ = e.pools.LoadOrStore(u.key, &sync.Pool{})
	}
	pool := p.(*sync.Pool)
	if in, ok := pool.Get().(*instance); ok {
		in.t.Tree = u.main
		for name, t := range u.defs {
			in.defs[name].Tree = t
		}
		in.own.reset(ctx, &e.lim)
		in.b, in.u = &in.own, u
		return in
	}
	in := e.newInstance(e.base, u, nil)
	in.pool = pool
	in.own.reset(ctx, &e.lim)
	in.b = &in.own
	return in
}

func (in *instance) release() {
	in.depth = 0
	in.b = nil
	in.own.flush()
	in.own = budget{}
	in.top = limitedWriter{}
	clear(in.memo)
	in.pool.Put(in)
}

// newInstance clones from (the partials, or for tpl the caller's set) and
// adds u's trees; u's main tree becomes the root.
func (e *Engine) newInstance(from *template.Template, u *unit, local map[string]*template.Template) *instance {
	t, _ := from.Clone() // Clone never fails
	if from != e.base {
		// The clone's root is the caller's text; tpl text runs from a slot.
		t, _ = t.AddParseTree(tplFile, u.main)
	} else {
		t, _ = t.AddParseTree(mainName, u.main)
	}
	in := &instance{e: e, t: t, u: u, defs: make(map[string]*template.Template, len(u.defs)+len(local)), memo: map[memoKey]memoEntry{}}
	t.Funcs(template.FuncMap{"include": in.include, "tpl": in.tpl})
	t.Funcs(in.limited())
	for name := range local {
		in.defs[name] = t.Lookup(name)
	}
	for name, tree := range u.defs {
		in.defs[name], _ = t.AddParseTree(name, tree)
	}
	// Options are per template and Clone does not copy them.
	for _, x := range t.Templates() {
		x.Option("missingkey=error")
	}
	return in
}

// include executes the named template with data and returns its output, so
// that it can be piped (include "x" . | nindent 4).
func (in *instance) include(name string, data any) (string, error) {
	var t *template.Template
	if !strings.HasPrefix(name, reservedPrefix) {
		t = in.t.Lookup(name)
	}
	if t == nil {
		return "", userError(fmt.Sprintf("no template %q", name))
	}
	if in.depth >= maxDepth {
		return "", userError(fmt.Sprintf("include %q: more than %d nested include and tpl calls", name, maxDepth))
	}
	if err := in.b.step(includeCost + in.weightOf(name)); err != nil {
		return "", err
	}
	key, memo := memoKeyOf(name, data)
	memo = memo && in.e.pure[name] && in.defs[name] == nil
	if memo {
		if m, ok := in.memo[key]; ok {
			return m.out, nil
		}
	}
	in.depth++
	defer func() { in.depth-- }()
	out, err := in.execute(t, data, "include")
	if err == nil {
		err = in.b.value(int64(len(out)), "include")
	}
	if memo && err == nil {
		in.memo[key] = memoEntry{data: data, out: out}
	}
	return out, err
}

// buffers hold the output of include and tpl calls until it is copied into
// the string they return: one allocation instead of a growing builder's.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// execute runs t into a buffer of at most Limits.Value bytes; what names
// the call in an error about that limit.
func (in *instance) execute(t *template.Template, data any, what string) (string, error) {
	b := buffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= 64<<10 {
			b.Reset()
			buffers.Put(b)
		}
	}()
	// One writer per depth, kept with the pooled instance: nested calls
	// each count their own output.
	for len(in.writers) <= in.depth {
		in.writers = append(in.writers, new(limitedWriter))
	}
	w := in.writers[in.depth]
	*w = limitedWriter{w: b, b: in.b, limit: in.b.lim.Value, what: what}
	defer func() { w.w, w.b = nil, nil }()
	if err := t.Execute(w, data); err != nil {
		return "", in.e.execError(in.b.place(err))
	}
	return b.String(), nil
}

// tpl renders text as a template with data, seeing the partials and the
// caller's own defines, like Helm's tpl.
func (in *instance) tpl(text string, data any) (string, error) {
	if in.depth >= maxDepth {
		return "", userError(fmt.Sprintf("tpl: more than %d nested include and tpl calls", maxDepth))
	}
	if err := in.b.step(includeCost + int64(len(text))>>4); err != nil {
		return "", err
	}
	u, errs := in.e.parseUnit(tplFile, tplFile, text)
	if len(errs) == 0 {
		errs = in.e.link(u, func(name string) bool { return in.defs[name] != nil })
	}
	if len(errs) > 0 {
		errs.Sort()
		return "", fromTpl(errs[0])
	}
	u.instrument(fileTpl, func(string) bool { return true })
	if err := in.b.step(u.weight); err != nil {
		return "", err
	}
	var t *template.Template
	if len(u.defs) == 0 {
		t = in.tplSlot()
		t.Tree = u.main
	} else {
		// Rare: the text defines templates of its own, which must not stay
		// in this pooled set.
		child := in.e.newInstance(in.t, u, in.defs)
		child.depth = in.depth + 1
		child.b = in.b
		t = child.t
	}
	in.depth++
	defer func() { in.depth-- }()
	out, err := in.execute(t, data, "tpl")
	if err == nil {
		err = in.b.value(int64(len(out)), "tpl")
	}
	var d *diag.Diagnostic
	if errors.As(err, &d) {
		return "", fromTpl(d)
	}
	return out, err
}

// tplSlot returns the template tpl runs its text from at the current depth:
// a tpl in progress keeps its slot while nested ones use deeper slots.
func (in *instance) tplSlot() *template.Template {
	for len(in.tpls) <= in.depth {
		t, _ := in.t.AddParseTree(tplFile+strconv.Itoa(len(in.tpls)), in.t.Tree)
		t.Option("missingkey=error")
		in.tpls = append(in.tpls, t)
	}
	return in.tpls[in.depth]
}

// includeCost is what an include or a tpl costs beyond the template it runs,
// in steps: running a template costs about as much as 16 function calls.
const includeCost = 16

// weightOf is what running the template name costs, in steps; 1 for a
// define of the text that called tpl, whose body is then charged by its
// ranges and the includes it makes.
func (in *instance) weightOf(name string) int64 {
	if w, ok := in.u.weights[name]; ok {
		return w
	}
	if w, ok := in.e.weights[name]; ok {
		return w
	}
	return 1
}
