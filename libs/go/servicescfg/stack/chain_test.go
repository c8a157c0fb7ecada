package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fromChain is a stack whose environments e0..e(n-1) each inherit from the
// one before and add a var, a label and a node overlay var: the hostile
// input of issue 9 (#9), where resolving every environment took minutes
// for n = 1000.
func fromChain(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n  environments:\n")
	b.WriteString("    e0: {runtime: non-prod, namespaceTemplate: 'n-{{ .Env }}'}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "    e%d: {from: e%d, vars: {k%d: v}, labels: {l%d: v}, overlays: {a: {vars: {o%d: x}}}}\n", i, i-1, i, i, i)
	}
	b.WriteString("  services:\n    - {name: a, manifests: [m/a.yaml]}\n")
	return []byte(b.String())
}

// chainRoot is a stack folder with fromChain's one manifest.
func chainRoot(tb testing.TB) string {
	root := tb.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "m"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "m", "a.yaml"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return root
}

// TestLongFromChain: every environment of a long chain resolves to what its
// whole chain declares.
func TestLongFromChain(t *testing.T) {
	const n = 1000
	s, err := LoadBytes("services.yaml", chainRoot(t), fromChain(n))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ResolveEnvironment(fmt.Sprintf("e%d", n-1))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Chain) != n || len(r.Vars) != n-1 || len(r.Labels) != n-1 || len(r.Overlays["a"].Vars) != n-1 || r.RuntimeName != "non-prod" {
		t.Errorf("chain %d, vars %d, labels %d, overlay vars %d, runtime %q", len(r.Chain), len(r.Vars), len(r.Labels), len(r.Overlays["a"].Vars), r.RuntimeName)
	}
}

// BenchmarkFromChain: loading (which validates every environment's chain)
// and resolving the deepest environment grow linearly with the length of
// the chain. Run: go test ./libs/go/servicescfg/stack -run '^$' -bench FromChain
func BenchmarkFromChain(b *testing.B) {
	for _, n := range []int{250, 500, 1000, 2000} {
		data := fromChain(n)
		root := chainRoot(b)
		b.Run(fmt.Sprintf("load/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				_, _ = LoadBytes("services.yaml", root, data)
			}
		})
		s, _ := LoadBytes("services.yaml", root, data)
		deepest := fmt.Sprintf("e%d", n-1)
		b.Run(fmt.Sprintf("resolve-deepest/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ResolveEnvironment(deepest); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
