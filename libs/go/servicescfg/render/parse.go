package render

import (
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template/parse"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// unit is one parsed template text: a manifest, a partial file, a string
// given to RenderString, or the text given to tpl.
type unit struct {
	name string // the file (relative to the stack root) or the caller's label
	// parseName is the name the trees carry into execution errors: the file
	// for a partial, textName for a render's text (see render).
	parseName string
	text      string
	main      *parse.Tree
	// defs are the templates the text defines, by name; lines gives the line
	// of each define (or block) action.
	defs  map[string]*parse.Tree
	lines map[string]int
	// key identifies the set of defined names; renders with the same key share
	// pooled template sets.
	key string
	// outLen is the length of the text's last output: the next render of
	// the same text starts with a buffer that size.
	outLen atomic.Int64
	// weight is what running main costs, weights what running each define
	// costs, in steps (see steps.go), set by instrument.
	weight  int64
	weights map[string]int64
}

// parseUnit parses text on its own: Go's text/template silently lets a later
// define replace an earlier one once they are in one set, so every text is
// parsed into a tree set of its own and names are compared afterwards.
// Problems are placed in name; the trees are parsed under parseName.
func (e *Engine) parseUnit(name, parseName, text string) (*unit, diag.List) {
	var errs diag.List
	var sites []defineSite
	if strings.Contains(text, "define") || strings.Contains(text, "block") {
		sites = scanDefines(text)
	}
	// Within one text: Go reports two non-empty definitions as a parse error
	// at the wrong line and accepts an empty one silently; report both files
	// and lines ourselves instead.
	first := make(map[string]int, len(sites))
	for _, s := range sites {
		switch {
		case strings.HasPrefix(s.name, reservedPrefix):
			errs.Add(diag.Pos{File: name, Line: s.line}, "template name %q is reserved", s.name)
		case s.name == parseName:
			errs.Add(diag.Pos{File: name, Line: s.line}, "template %q has the name of the file that defines it", s.name)
		}
		if l, dup := first[s.name]; dup {
			errs.Add(diag.Pos{File: name, Line: s.line}, "template %q already defined in %s", s.name, diag.Pos{File: name, Line: l})
			continue
		}
		first[s.name] = s.line
	}
	if len(errs) > 0 {
		return nil, errs
	}
	trees, err := parse.Parse(parseName, text, "", "", e.funcs, builtinNames)
	if err != nil {
		errs = append(errs, parseError(name, parseName, err))
		return nil, errs
	}
	u := &unit{name: name, parseName: parseName, text: text, main: trees[parseName]}
	if len(trees) > 1 {
		u.defs = make(map[string]*parse.Tree, len(trees)-1)
		u.lines = make(map[string]int, len(trees)-1)
		names := make([]string, 0, len(trees)-1)
		for n, t := range trees {
			if n == parseName {
				continue
			}
			u.defs[n] = t
			u.lines[n] = first[n]
			if u.lines[n] == 0 { // the scanner missed it: fall back on the body's line
				u.lines[n] = lineAt(text, int(t.Root.Pos))
			}
			names = append(names, n)
		}
		sort.Strings(names)
		var key strings.Builder
		for _, n := range names {
			key.WriteString(strconv.Quote(n))
		}
		u.key = key.String()
	}
	if u.main == nil { // only when a define took the text's own name
		errs.Add(diag.Pos{File: name}, "template %q defines itself", name)
		return nil, errs
	}
	errs = append(errs, e.checkFuncs(u)...)
	errs = append(errs, e.checkLimits(u)...)
	return u, errs
}

// parseError rewrites Go's "template: PARSENAME:LINE: MSG" as NAME:LINE: MSG.
func parseError(name, parseName string, err error) *diag.Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	if rest, ok := strings.CutPrefix(msg, parseName+":"); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if line, err := strconv.Atoi(rest[:i]); err == nil {
				return &diag.Diagnostic{Pos: diag.Pos{File: name, Line: line}, Msg: rest[i+2:]}
			}
		}
	}
	return &diag.Diagnostic{Pos: diag.Pos{File: name}, Msg: msg}
}

// lineAt returns the 1-based line of byte offset pos in text.
func lineAt(text string, pos int) int {
	if pos > len(text) {
		pos = len(text)
	}
	return 1 + strings.Count(text[:pos], "\n")
}

// defineSite is a define or block action found in a text.
type defineSite struct {
	name string
	line int
}

// scanDefines lists the define and block actions of a template text in order,
// with their lines. It follows text/template's lexer closely enough for any
// text that parses: actions start at "{{" (optionally "{{- "), comments run
// from "/*" to "*/", and quoted strings inside actions may hold "}}".
func scanDefines(text string) []defineSite {
	var sites []defineSite
	line, counted := 1, 0
	for pos := 0; ; {
		i := strings.Index(text[pos:], "{{")
		if i < 0 {
			return sites
		}
		start := pos + i
		p := start + 2
		if len(text) >= p+2 && text[p] == '-' && isSpace(text[p+1]) {
			p += 2
		}
		if strings.HasPrefix(text[p:], "/*") {
			end := strings.Index(text[p+2:], "*/")
			if end < 0 {
				return sites
			}
			pos = p + 2 + end + 2
			continue
		}
		for p < len(text) && isSpace(text[p]) {
			p++
		}
		for _, kw := range [...]string{"define", "block"} {
			if !strings.HasPrefix(text[p:], kw) || (len(text) > p+len(kw) && isIdent(text[p+len(kw)])) {
				continue
			}
			q := p + len(kw)
			for q < len(text) && isSpace(text[q]) {
				q++
			}
			if n := quotedLen(text[q:]); n > 0 {
				if name, err := strconv.Unquote(text[q : q+n]); err == nil {
					line += strings.Count(text[counted:start], "\n")
					counted = start
					sites = append(sites, defineSite{name: name, line: line})
				}
			}
			break
		}
		end := actionEnd(text, p)
		if end < 0 {
			return sites
		}
		pos = end
	}
}

// actionEnd returns the offset just past the "}}" closing the action whose
// body starts at p, skipping quoted strings; -1 if there is none.
func actionEnd(text string, p int) int {
	for p < len(text) {
		switch c := text[p]; {
		case c == '"' || c == '`' || c == '\'':
			n := quotedLen(text[p:])
			if n <= 0 {
				return -1
			}
			p += n
		case strings.HasPrefix(text[p:], "}}"):
			return p + 2
		default:
			p++
		}
	}
	return -1
}

// quotedLen returns the length of the quoted literal s starts with (a
// "string", a `raw string` or a 'c'har), or 0.
func quotedLen(s string) int {
	if s == "" {
		return 0
	}
	q := s[0]
	switch q {
	case '`':
		if i := strings.IndexByte(s[1:], '`'); i >= 0 {
			return i + 2
		}
		return 0
	case '"', '\'':
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\n':
				return 0
			case q:
				return i + 1
			}
		}
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// ref is a reference to a named template: {{ template "x" }} or
// {{ include "x" }} with a constant name. The line is computed only when
// reported.
type ref struct {
	name string
	file string
	text string
	off  int
}

func (r ref) pos() diag.Pos { return diag.Pos{File: r.file, Line: lineAt(r.text, r.off)} }

// walk calls visit for every node of the tree.
func walk(n parse.Node, visit func(parse.Node)) {
	if n == nil {
		return
	}
	visit(n)
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, visit)
		}
	case *parse.ActionNode:
		walk(n.Pipe, visit)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, visit)
		}
	case *parse.CommandNode:
		for _, c := range n.Args {
			walk(c, visit)
		}
	case *parse.ChainNode:
		walk(n.Node, visit)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.TemplateNode:
		walk(n.Pipe, visit)
	}
}

func walkBranch(b *parse.BranchNode, visit func(parse.Node)) {
	walk(b.Pipe, visit)
	walk(b.List, visit)
	if b.ElseList != nil {
		walk(b.ElseList, visit)
	}
}

// refs lists the named templates a tree calls by a constant name.
func refs(file, text string, t *parse.Tree) []ref {
	var out []ref
	walk(t.Root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.TemplateNode:
			out = append(out, ref{name: n.Name, file: file, text: text, off: int(n.Pos)})
		case *parse.CommandNode:
			if len(n.Args) < 2 {
				return
			}
			id, ok := n.Args[0].(*parse.IdentifierNode)
			if !ok || id.Ident != "include" {
				return
			}
			if s, ok := n.Args[1].(*parse.StringNode); ok {
				out = append(out, ref{name: s.Text, file: file, text: text, off: int(id.Pos)})
			}
		}
	})
	return out
}

// checkFuncs reports calls of the functions that would read the process
// environment, at parse time so that an untaken branch fails too.
func (e *Engine) checkFuncs(u *unit) diag.List {
	var errs diag.List
	visit := func(n parse.Node) {
		if id, ok := n.(*parse.IdentifierNode); ok {
			if d, off := disabledFuncs[id.Ident]; off {
				errs = append(errs, &diag.Diagnostic{
					Pos:  diag.Pos{File: u.name, Line: lineAt(u.text, int(id.Pos))},
					Msg:  d.msg,
					Hint: d.hint,
				})
			}
		}
	}
	walk(u.main.Root, visit)
	for _, t := range u.defs {
		walk(t.Root, visit)
	}
	return errs
}

// sortedDefs returns the names the unit defines, in the order of their lines.
func (u *unit) sortedDefs() []string {
	names := make([]string, 0, len(u.defs))
	for n := range u.defs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if u.lines[names[i]] != u.lines[names[j]] {
			return u.lines[names[i]] < u.lines[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
