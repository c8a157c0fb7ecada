package stack

import (
	"strings"
	"testing"
)

// TestNullWhereAMappingIsRequired: a null where the model needs a mapping
// (spec, metadata) or as an entry of a list of records (services, secrets,
// steps, ...) is an error at its position (issue 9, #8); before, spec: null
// passed with zero environments and `secrets: [~]` planned a Secret named "".
// A null optional section reads as absent.
func TestNullWhereAMappingIsRequired(t *testing.T) {
	const head = "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\n"
	const spec = "spec:\n  project: n\n  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n  services:\n    - {name: a, manifests: [m/a.yaml]}\n"
	tests := []struct {
		name, in string
		want     []string // nil: valid
	}{
		{"spec null", head + "spec: null\n", []string{"services.yaml:4:7: spec must be a mapping, not null"}},
		{"spec and metadata ~", "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: ~\nspec: ~\n",
			[]string{"services.yaml:3:11: metadata must be a mapping, not null", "services.yaml:4:7: spec must be a mapping, not null"}},
		{"services [~, ~]", head + "spec:\n  project: n\n  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n  services: [~, ~]\n",
			[]string{"services.yaml:8:14: spec.services[0] must be a mapping, not null (remove the empty entry or fill it in)",
				"services.yaml:8:17: spec.services[1] must be a mapping, not null"}},
		{"infrastructure [~]", head + spec + "  infrastructure: [~]\n", []string{"services.yaml:10:20: spec.infrastructure[0] must be a mapping, not null"}},
		{"secrets [~]", head + spec + "  secrets: [~]\n", []string{"services.yaml:10:13: spec.secrets[0] must be a mapping, not null"}},
		{"steps and variables [~]", head + spec + "  bootstrap:\n    variables: [~]\n    steps:\n      - ~\n",
			[]string{"services.yaml:11:17: spec.bootstrap.variables[0] must be a mapping, not null", "services.yaml:13:9: spec.bootstrap.steps[0] must be a mapping, not null"}},
		{"readiness conditions [~]", head + spec[:len(spec)-1] + "\n    - {name: b, manifests: [m/a.yaml], readiness: {conditions: [null]}}\n",
			[]string{"spec.services[1].readiness.conditions[0] must be a mapping, not null"}},
		{"optional sections null", head + spec + "  bootstrap: ~\n  vars: ~\n  deploy: ~\n  templates: ~\n  versions:\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("services.yaml", chainRoot(t), []byte(tt.in))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %q, got no error", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
