package plan

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// graphGroup is one deploy group of the plan with its nodes, in apply
// order.
type graphGroup struct {
	name  string
	nodes []*Node
}

// groups returns the plan's groups in deploy order (by stage), each with
// its nodes in plan order.
func (p *Plan) groups() []graphGroup {
	var out []graphGroup
	nodes := slices.Clone(p.Nodes)
	slices.SortStableFunc(nodes, func(a, b *Node) int { return a.Stage - b.Stage })
	for _, s := range nodes {
		if len(out) == 0 || out[len(out)-1].name != s.Group {
			out = append(out, graphGroup{name: s.Group})
		}
		out[len(out)-1].nodes = append(out[len(out)-1].nodes, s)
	}
	return out
}

func (p *Plan) graphTitle() string {
	t := fmt.Sprintf("%s: environment %s", p.Stack, p.Environment)
	if p.Slot != "" {
		t += ", slot " + p.Slot
	}
	return t + ", namespace " + p.Namespace
}

func nodeLabel(s *Node, lineBreak string) string {
	objects := fmt.Sprintf("%d objects", len(s.Objects))
	if len(s.Objects) == 1 {
		objects = "1 object"
	}
	return s.Name + lineBreak + objects
}

// WriteDOT draws the plan's DAG for Graphviz (`dot -Tsvg`): one cluster per
// deploy group in order, an edge from each dependency to its dependent,
// and a bold edge between consecutive groups for the group barrier (every
// node of a group waits for every node of the groups before it). The same
// plan gives the same bytes.
func (p *Plan) WriteDOT(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(p.Stack+" "+p.Environment))
	fmt.Fprintf(&b, "  label=%s;\n  labelloc=t;\n  compound=true;\n  rankdir=TB;\n", dotQuote(p.graphTitle()))
	b.WriteString("  node [shape=box, style=rounded];\n")
	groups := p.groups()
	for i, g := range groups {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n", i, dotQuote("group "+g.name))
		for _, s := range g.nodes {
			fmt.Fprintf(&b, "    %s [label=%s];\n", dotQuote(s.Name), dotQuote(nodeLabel(s, "\n")))
		}
		b.WriteString("  }\n")
	}
	for _, s := range p.Nodes {
		for _, dep := range s.After {
			fmt.Fprintf(&b, "  %s -> %s;\n", dotQuote(dep), dotQuote(s.Name))
		}
	}
	for i := 1; i < len(groups); i++ {
		fmt.Fprintf(&b, "  %s -> %s [ltail=cluster_%d, lhead=cluster_%d, style=bold, color=gray40, label=\"group barrier\"];\n",
			dotQuote(groups[i-1].nodes[0].Name), dotQuote(groups[i].nodes[0].Name), i-1, i)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote is s as a DOT quoted string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// WriteMermaid draws the plan's DAG as a Mermaid flowchart, for a
// ```mermaid block of a Markdown file: a subgraph per deploy group in
// order, an arrow from each dependency to its dependent, and a thick arrow
// between consecutive groups for the group barrier. The same plan gives
// the same bytes.
func (p *Plan) WriteMermaid(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "---\ntitle: \"%s\"\n---\nflowchart TB\n", mermaidText(p.graphTitle()))
	ids := map[string]string{}
	for i, s := range p.Nodes {
		ids[s.Name] = fmt.Sprintf("n%d", i)
	}
	groups := p.groups()
	for i, g := range groups {
		fmt.Fprintf(&b, "  subgraph g%d[\"group %s\"]\n", i, mermaidText(g.name))
		for _, s := range g.nodes {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", ids[s.Name], mermaidText(nodeLabel(s, "<br/>")))
		}
		b.WriteString("  end\n")
	}
	for _, s := range p.Nodes {
		for _, dep := range s.After {
			fmt.Fprintf(&b, "  %s --> %s\n", ids[dep], ids[s.Name])
		}
	}
	for i := 1; i < len(groups); i++ {
		fmt.Fprintf(&b, "  g%d ==>|group barrier| g%d\n", i-1, i)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidText escapes what would end a quoted Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "\n", " ").Replace(s)
}
