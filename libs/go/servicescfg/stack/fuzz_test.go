package stack

import (
	"errors"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// FuzzLoad checks that no input makes the loader panic, and that what it
// returns keeps its promises: a diag.List of positioned problems, a stack
// whenever the YAML parsed, and a stack without problems that validates.
func FuzzLoad(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c.src))
	}
	for _, c := range errorCases {
		f.Add([]byte(c.src))
	}
	f.Add([]byte(inheritance))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n"))
	f.Add([]byte("spec: {services: [{<<: {name: x}, name: y}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadBytes("services.yaml", testRoot, data)
		if err != nil {
			var list diag.List
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty diag.List: %v", err, err)
			}
			for _, d := range list {
				if d.Pos.File != "services.yaml" {
					t.Fatalf("diagnostic without the file: %v", d)
				}
			}
		}
		if s == nil {
			if err == nil {
				t.Fatal("nil stack without an error")
			}
			return
		}
		if err == nil {
			if again := s.Validate(); len(again) > 0 {
				t.Fatalf("loaded without problems, but Validate finds:\n%v", again)
			}
		} else {
			s.Validate()
		}
		for _, name := range s.EnvironmentNames() {
			r, err := s.ResolveEnvironment(name)
			if err == nil && (r.Runtime == nil || r.NamespaceTemplate == "") {
				t.Fatalf("environment %q resolved without runtime or namespaceTemplate", name)
			}
		}
		for _, n := range s.Nodes() {
			s.NodePos(n, "dependsOn", 0)
			s.GroupIndex(n.Group)
		}
	})
}
