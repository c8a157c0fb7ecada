package plan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanGraphsGolden draws both real stacks' plans as DOT and Mermaid,
// compares them with golden files, and checks that drawing twice gives the
// same bytes.
func TestPlanGraphsGolden(t *testing.T) {
	for _, tc := range []struct{ id, path, env string }{
		{"platform-staging", filepath.Join(repoRoot, "services.yaml"), "staging"},
		{"new-project-dev", filepath.Join(repoRoot, "examples/new-project/services.yaml"), "dev"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			draw := func() (dot, mmd []byte) {
				p, err := Build(context.Background(), load(t, tc.path), Options{Env: tc.env, IdentityOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				var d, m bytes.Buffer
				if err := p.WriteDOT(&d); err != nil {
					t.Fatal(err)
				}
				if err := p.WriteMermaid(&m); err != nil {
					t.Fatal(err)
				}
				return d.Bytes(), m.Bytes()
			}
			dot, mmd := draw()
			dot2, mmd2 := draw()
			if !bytes.Equal(dot, dot2) || !bytes.Equal(mmd, mmd2) {
				t.Errorf("drawing the same plan twice gave different bytes")
			}
			golden(t, tc.id+".plan.dot", dot)
			golden(t, tc.id+".plan.mmd", mmd)
		})
	}
}

// TestPlanGraphInDocs: the picture of the platform's staging plan in
// docs/plan_graph.md is the one the engine draws today.
func TestPlanGraphInDocs(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "platform-staging.plan.mmd"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "plan_graph.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```mermaid\n"+string(want)+"```\n") {
		t.Errorf("docs/plan_graph.md does not hold the current drawing: run\n  codex-bootstrap reconcile --env staging --dry-run -o mermaid\nand replace its mermaid block")
	}
}

// TestPlanGraphShape: dependencies point from a dependency to its
// dependent, groups are subgraphs in order, barriers join consecutive
// groups.
func TestPlanGraphShape(t *testing.T) {
	p := &Plan{Stack: "s", Environment: "dev", Namespace: "s-dev", Nodes: []*Node{
		{Name: "db", Group: "stateful", Stage: 0, Objects: []*Object{{}}},
		{Name: "api", Group: "internal", Stage: 1, After: []string{"db"}},
		{Name: "web", Group: "frontend", Stage: 2, After: []string{"api"}},
	}}
	var m, d bytes.Buffer
	_ = p.WriteMermaid(&m)
	_ = p.WriteDOT(&d)
	for _, want := range []string{`subgraph g0["group stateful"]`, `n0["db<br/>1 object"]`, "n0 --> n1", "n1 --> n2", "g0 ==>|group barrier| g1", "g1 ==>|group barrier| g2"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("mermaid lacks %q:\n%s", want, m.String())
		}
	}
	for _, want := range []string{`subgraph cluster_0 {`, `"db" -> "api";`, `"api" -> "web" [ltail=cluster_1, lhead=cluster_2`} {
		if !strings.Contains(d.String(), want) {
			t.Errorf("dot lacks %q:\n%s", want, d.String())
		}
	}
}
