package render

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"text/template/parse"
)

// SourceLine reports which line of the template file at path wrote line
// outLine (1-based) of what RenderFile(path, data) renders: the line of the
// text that holds it, or of the action that printed it, such as the include
// of a partial. A problem found in the rendered output, YAML that does not
// parse say, can then be placed in the template. It renders the file again,
// so it is meant for error messages; ok is false when it cannot tell.
func (e *Engine) SourceLine(ctx context.Context, path string, data any, outLine int) (line int, ok bool) {
	lines, ok := e.SourceMap(ctx, path, data)
	if !ok || outLine < 1 || outLine > len(lines) || lines[outLine-1] == 0 {
		return 0, false
	}
	return lines[outLine-1], true
}

// SourceMap is SourceLine for every line of the output at once: element i
// is the template line that wrote line i+1 of the output (0 when unknown).
// A caller placing many problems of one render asks once.
func (e *Engine) SourceMap(ctx context.Context, path string, data any) ([]int, bool) {
	name, err := e.rel(path)
	if err != nil {
		return nil, false
	}
	text, err := e.read(name)
	if err != nil {
		return nil, false
	}
	u, errs := e.cached(name, text)
	if len(errs) > 0 || u.main == nil {
		return nil, false
	}
	want, errs := e.render(ctx, name, text, data)
	if len(errs) > 0 || bytes.IndexByte(want, 0) >= 0 {
		return nil, false // a NUL of its own would read as a marker
	}
	traced, marks := trace(u.main, text, nil)
	in := e.acquire(ctx, u)
	lim := e.lim
	lim.Output *= 2 // the markers add to the output
	in.b.lim = &lim
	in.t.Tree = traced // acquire sets the trees back for the next render
	if printedOnly := printedDefines(u); printedOnly != nil {
		for name, tree := range u.defs {
			// The file's own defines (and blocks) print lines of their
			// own; one whose output include returns as a value is left
			// alone, since markers in a value would change it.
			if printedOnly[name] {
				in.defs[name].Tree, marks = trace(tree, text, marks)
			}
		}
	}
	var buf bytes.Buffer
	if c, ok := data.(Context); ok {
		data = &c
	}
	in.top = limitedWriter{w: &buf, b: in.b}
	err = in.t.Execute(&in.top, data)
	in.release()
	if err != nil {
		return nil, false
	}
	return locate(buf.Bytes(), marks, want)
}

// printedDefines returns the unit's own defines whose output is only ever
// printed (called by template or block), never taken as a value by include;
// nil when include or tpl is called with a name or text only known when
// rendering, which could reach any of them.
func printedDefines(u *unit) map[string]bool {
	included := map[string]bool{}
	dynamic := false
	visit := func(n parse.Node) {
		c, ok := n.(*parse.CommandNode)
		if !ok || len(c.Args) == 0 {
			return
		}
		id, ok := c.Args[0].(*parse.IdentifierNode)
		if !ok {
			return
		}
		switch id.Ident {
		case "include":
			var name *parse.StringNode
			if len(c.Args) > 1 {
				name, _ = c.Args[1].(*parse.StringNode)
			}
			if name == nil {
				dynamic = true
			} else {
				included[name.Text] = true
			}
		case "tpl":
			dynamic = true
		}
	}
	walk(u.main.Root, visit)
	for _, t := range u.defs {
		walk(t.Root, visit)
	}
	if dynamic {
		return nil
	}
	out := map[string]bool{}
	for name := range u.defs {
		out[name] = !included[name]
	}
	return out
}

// mark is where an instrumented node starts: its template line, and whether
// it is text (whose own line breaks move down the template) or an action.
type mark struct {
	line int
	text bool
}

// trace returns a copy of tree that writes a marker ("\x00N\x00") before
// every node of every list, and marks extended with what each marker
// stands for. Whitespace trimming happened at parse time, so the markers
// change nothing else.
func trace(tree *parse.Tree, text string, marks []mark) (*parse.Tree, []mark) {
	t := tree.Copy()
	lineOf := func(pos parse.Pos) int { return strings.Count(text[:min(int(pos), len(text))], "\n") + 1 }
	var list func(l *parse.ListNode)
	list = func(l *parse.ListNode) {
		if l == nil {
			return
		}
		nodes := make([]parse.Node, 0, 2*len(l.Nodes))
		for _, n := range l.Nodes {
			_, isText := n.(*parse.TextNode)
			nodes = append(nodes, &parse.TextNode{NodeType: parse.NodeText, Pos: n.Position(),
				Text: []byte("\x00" + strconv.Itoa(len(marks)) + "\x00")})
			marks = append(marks, mark{line: lineOf(n.Position()), text: isText})
			switch n := n.(type) {
			case *parse.IfNode:
				list(n.List)
				list(n.ElseList)
			case *parse.RangeNode:
				list(n.List)
				list(n.ElseList)
			case *parse.WithNode:
				list(n.List)
				list(n.ElseList)
			}
			nodes = append(nodes, n)
		}
		l.Nodes = nodes
	}
	list(t.Root)
	return t, marks
}

// locate reads a traced output: for each output line, the template line in
// force when its first byte was written. The output without markers must be
// want, the untraced render, or nothing is claimed.
func locate(out []byte, marks []mark, want []byte) ([]int, bool) {
	var plain bytes.Buffer
	plain.Grow(len(want))
	var lines []int
	cur, inText, started := 0, false, false
	for i := 0; i < len(out); {
		if out[i] == 0 {
			j := bytes.IndexByte(out[i+1:], 0)
			if j < 0 {
				return nil, false
			}
			k, err := strconv.Atoi(string(out[i+1 : i+1+j]))
			if err != nil || k < 0 || k >= len(marks) {
				return nil, false
			}
			cur, inText = marks[k].line, marks[k].text
			i += j + 2
			continue
		}
		if !started {
			started = true
			lines = append(lines, cur)
		}
		if out[i] == '\n' {
			started = false
			if inText {
				cur++
			}
		}
		plain.WriteByte(out[i])
		i++
	}
	if !bytes.Equal(plain.Bytes(), want) {
		return nil, false
	}
	return lines, true
}
