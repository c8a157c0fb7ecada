package render

import (
	"math"
	"reflect"
	"strconv"
	"text/template/parse"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// text/template runs a range over an integer, or over a long list, without
// calling any function: neither a limited writer nor checks in functions
// would stop {{ range $i := 300000000 }}{{ end }}. So every parsed tree is
// instrumented once, when its text is parsed: the pipeline of each range
// ends in a hidden call of rangeFunc, which charges the render's budget, before
// the loop starts, with the number of iterations times the weight of the
// body (one step, plus one for each command and template call written in
// it, nested range bodies excluded: they charge their own), and checks for
// cancellation. A template's own weight is charged when it starts: by
// render for the text, by include and tpl for what they run, and for the
// defines that a {{ template }} action calls, by a hidden call of stepFunc
// at the start of their body (few templates use the action; a call costs
// more than charging from Go).
const (
	// rangeFunc and stepFunc are bound per render (instance.limited) but
	// absent from the functions texts are parsed against, so no template
	// can call them.
	rangeFunc = "codexRenderRange"
	stepFunc  = "codexRenderStep"
	// stepVar receives stepFunc's result, so that nothing is printed; no
	// template can name it.
	stepVar = "$\x00step"
)

// Where a charge is made travels packed in one constant with its weight, so
// that the hidden calls take one argument: text/template allocates for each.
// The file is 0 for the rendered text, 1 for tpl text, 2+i for the partial
// file Engine.files[i].
const (
	fileText = 0
	fileTpl  = 1
	maxLine  = 1<<24 - 1
	maxW     = 1<<23 - 1
)

func pack(w int64, line int, file int64) int64 {
	return min(w, maxW)<<40 | int64(min(line, maxLine))<<16 | file&0xffff
}

func unpack(p int64) (w int64, line int, file int64) {
	return p >> 40, int(p >> 16 & maxLine), p & 0xffff
}

// fileName names the file of a packed charge.
func (e *Engine) fileName(code int64) string {
	switch {
	case code == fileText:
		return textName
	case code == fileTpl:
		return tplFile
	case int(code-2) < len(e.files):
		return e.files[code-2]
	}
	return ""
}

// instrument adds the range charges to the trees of u and the step calls to
// its defines named in called, and records their weights. file is the code
// of u's file (pack).
func (u *unit) instrument(file int64, called func(name string) bool) {
	instrumentList(u.main.Root, file, u.text)
	u.weight = weight(u.main.Root) + 1
	if len(u.defs) > 0 {
		u.weights = make(map[string]int64, len(u.defs))
	}
	for name, t := range u.defs {
		instrumentList(t.Root, file, u.text)
		u.weights[name] = weight(t.Root) + 1
		if called(name) {
			addStep(t, u.weights[name], file, u.text)
		}
	}
}

// templateCalls returns the names that {{ template }} actions of the trees
// call.
func templateCalls(trees ...*parse.Tree) map[string]bool {
	out := map[string]bool{}
	for _, t := range trees {
		if t == nil {
			continue
		}
		walk(t.Root, func(n parse.Node) {
			if c, ok := n.(*parse.TemplateNode); ok {
				out[c.Name] = true
			}
		})
	}
	return out
}

// addStep makes t charge w steps when it starts.
func addStep(t *parse.Tree, w int64, file int64, text string) {
	pos := t.Root.Pos
	step := stepNode(w, pos, file, lineAt(text, int(pos)))
	t.Root.Nodes = append([]parse.Node{step}, t.Root.Nodes...)
}

func instrumentList(l *parse.ListNode, file int64, text string) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.RangeNode:
			instrumentList(n.List, file, text)
			instrumentList(n.ElseList, file, text)
			w := weight(n.List) + 1
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{
				&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Pos: n.Pos, Ident: rangeFunc},
				number(pack(w, lineAt(text, int(n.Pos)), file), n.Pos),
			}})
		case *parse.IfNode:
			instrumentList(n.List, file, text)
			instrumentList(n.ElseList, file, text)
		case *parse.WithNode:
			instrumentList(n.List, file, text)
			instrumentList(n.ElseList, file, text)
		}
	}
}

// weight counts the commands and template calls of n, range bodies
// excluded.
func weight(n parse.Node) int64 {
	var w int64
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				w += weight(c)
			}
		}
	case *parse.ActionNode:
		w += weight(n.Pipe)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				w += weight(c)
			}
		}
	case *parse.CommandNode:
		w++
		for _, a := range n.Args {
			w += weight(a)
		}
	case *parse.IfNode:
		w += weight(n.Pipe) + weight(n.List) + weight(n.ElseList)
	case *parse.WithNode:
		w += weight(n.Pipe) + weight(n.List) + weight(n.ElseList)
	case *parse.RangeNode:
		w += weight(n.Pipe) + weight(n.ElseList)
	case *parse.TemplateNode:
		w += templateCost + weight(n.Pipe)
	}
	return w
}

// templateCost is what a {{ template }} action costs beyond the define it
// runs, in steps: it starts a new execution state, and the define charges
// through a hidden call.
const templateCost = 8

func number(v int64, pos parse.Pos) *parse.NumberNode {
	return &parse.NumberNode{NodeType: parse.NodeNumber, Pos: pos, IsInt: true, Int64: v, Text: strconv.FormatInt(v, 10)}
}

// stepNode is {{ $STEPVAR := STEPFUNC PACKED }} placed at pos.
func stepNode(w int64, pos parse.Pos, file int64, line int) *parse.ActionNode {
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: []parse.Node{
		&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Pos: pos, Ident: stepFunc},
		number(pack(w, line, file), pos),
	}}
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Line: line,
		Decl: []*parse.VariableNode{{NodeType: parse.NodeVariable, Pos: pos, Ident: []string{stepVar}}},
		Cmds: []*parse.CommandNode{cmd}}
	return &parse.ActionNode{NodeType: parse.NodeAction, Pos: pos, Line: line, Pipe: pipe}
}

// step is stepFunc bound to an instance; it stops the template when the
// budget is spent (see stop).
func (in *instance) step(packed int64) string {
	w, line, file := unpack(packed)
	in.b.file, in.b.line = in.e.fileName(file), line
	stop(in.b.step(w))
	return ""
}

// rangeCharge is rangeFunc bound to an instance: it charges w steps for each
// iteration of a range over v, and returns v. The range is at line of file.
// It stops the template when the budget is spent (see stop).
func (in *instance) rangeCharge(packed int64, v any) any {
	w, line, file := unpack(packed)
	in.b.file, in.b.line = in.e.fileName(file), line
	n := int64(0)
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			break
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n = max(rv.Int(), 0)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n = int64(min(rv.Uint(), math.MaxInt64))
	case reflect.Slice, reflect.Array, reflect.Map:
		n = int64(rv.Len())
	case reflect.Func, reflect.Chan:
		stop(userError("range over a function or a channel is not supported: its length is unknown"))
	}
	stop(in.b.step(mul(n, w) + 1))
	return v
}

// sizedFuncs are the functions whose constant arguments are checked with
// the text: the size of what they would return, from those arguments.
var sizedFuncs = map[string]func(args []int64) (size int64, ok bool){
	"until": func(a []int64) (int64, bool) {
		if len(a) != 1 {
			return 0, false
		}
		return mul(abs(a[0]), 8), true
	},
	"untilStep": func(a []int64) (int64, bool) {
		if len(a) != 3 || a[2] == 0 {
			return 0, false
		}
		return mul(abs(a[1]-a[0])/abs(a[2]), 8), true
	},
	"seq": func(a []int64) (int64, bool) { return seqSize(a), len(a) > 0 },
}

// checkLimits reports, when a text is checked, what its constants show
// would exceed the budget: a range over an integer above the step limit, a
// list of integers or a repeat over the value limit.
func (e *Engine) checkLimits(u *unit) diag.List {
	var errs diag.List
	at := func(n parse.Node) diag.Pos { return diag.Pos{File: u.name, Line: lineAt(u.text, int(n.Position()))} }
	visit := func(n parse.Node) {
		switch n := n.(type) {
		case *parse.RangeNode:
			if len(n.Pipe.Cmds) == 1 && len(n.Pipe.Cmds[0].Args) == 1 {
				if c, ok := n.Pipe.Cmds[0].Args[0].(*parse.NumberNode); ok && c.IsInt && c.Int64 > e.lim.Steps {
					errs.AddHint(at(n), limitHint, "range over %d: more than the %d steps a render may take", c.Int64, e.lim.Steps)
				}
			}
		case *parse.CommandNode:
			id, ok := n.Args[0].(*parse.IdentifierNode)
			if !ok {
				return
			}
			var ints []int64
			var strs []string
			for _, a := range n.Args[1:] {
				switch a := a.(type) {
				case *parse.NumberNode:
					if !a.IsInt {
						return
					}
					ints = append(ints, a.Int64)
				case *parse.StringNode:
					strs = append(strs, a.Text)
				default:
					return // not all constant
				}
			}
			size, ok := int64(0), false
			if f := sizedFuncs[id.Ident]; f != nil && len(strs) == 0 {
				size, ok = f(ints)
			} else if id.Ident == "repeat" && len(ints) == 1 && len(strs) == 1 {
				size, ok = mul(abs(ints[0]), int64(len(strs[0]))), true
			}
			if ok && size > e.lim.Value {
				errs.AddHint(at(id), limitHint, "%s would return more than %d bytes", id.Ident, e.lim.Value)
			}
		}
	}
	walk(u.main.Root, visit)
	for _, t := range u.defs {
		walk(t.Root, visit)
	}
	return errs
}

// abs is |v|, saturating: |MinInt64| is MaxInt64.
func abs(v int64) int64 {
	switch {
	case v == math.MinInt64:
		return math.MaxInt64
	case v < 0:
		return -v
	}
	return v
}

// mul is a*b for a, b >= 0, saturating at MaxInt64.
func mul(a, b int64) int64 {
	if a < 0 || b < 0 {
		return math.MaxInt64
	}
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// seqSize bounds the length of what sprig's seq prints for its arguments.
func seqSize(a []int64) int64 {
	var start, step, end int64 = 1, 1, 0
	switch len(a) {
	case 1:
		end = a[0]
	case 2:
		start, end = a[0], a[1]
	case 3:
		start, step, end = a[0], a[1], a[2]
	default:
		return 0
	}
	if step == 0 {
		return 0
	}
	n := abs(end-start)/abs(step) + 1
	digits := int64(len(strconv.FormatInt(max(abs(start), abs(end)), 10))) + 2
	return mul(n, digits)
}
