package render

import (
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// linkPartials computes, for each partial, the templates it reaches by a
// constant name (through other partials) that no partial defines. A partial
// may leave a name for the manifest to define (late binding, as in Helm);
// link then checks that each render that calls such a partial defines them.
func (e *Engine) linkPartials(units []*unit) {
	direct := make(map[string][]ref, len(e.partials))
	for _, u := range units {
		for name, t := range u.defs {
			if p, ok := e.partials[name]; ok && p.tree == t {
				direct[name] = refs(u.name, u.text, t)
			}
		}
	}
	for name := range e.partials {
		var out []ref
		seen := map[string]bool{name: true}
		queue := []string{name}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, r := range direct[n] {
				if _, ok := e.partials[r.name]; !ok {
					out = append(out, r)
				} else if !seen[r.name] {
					seen[r.name] = true
					queue = append(queue, r.name)
				}
			}
		}
		if len(out) > 0 {
			e.unresolved[name] = out
		}
	}
}

// link checks a parsed unit against the partials before it runs: its defines
// may not redefine a partial (or, for tpl text, a template of the render that
// calls it: local), and every template it reaches by a constant name must
// exist, in branches that will not run too.
func (e *Engine) link(u *unit, local func(name string) bool) diag.List {
	var errs diag.List
	for _, name := range u.sortedDefs() {
		pos := diag.Pos{File: u.name, Line: u.lines[name]}
		if p, dup := e.partials[name]; dup {
			errs.Add(pos, "template %q already defined in %s", name, p.pos)
		} else if local != nil && local(name) {
			errs.Add(pos, "template %q already defined by the template that calls tpl", name)
		}
	}
	own := func(name string) bool { return u.defs[name] != nil || local != nil && local(name) }
	check := func(r ref) {
		if !strings.HasPrefix(r.name, reservedPrefix) {
			if own(r.name) {
				return
			}
			if _, ok := e.partials[r.name]; ok {
				for _, x := range e.unresolved[r.name] {
					if !own(x.name) {
						errs.Add(x.pos(), "no template %q", x.name)
					}
				}
				return
			}
		}
		errs.Add(r.pos(), "no template %q", r.name)
	}
	for _, r := range refs(u.name, u.text, u.main) {
		check(r)
	}
	for _, t := range u.defs {
		for _, r := range refs(u.name, u.text, t) {
			check(r)
		}
	}
	return errs
}
