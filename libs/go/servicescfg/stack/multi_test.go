package stack

import (
	"strings"
	"testing"
)

// TestLoadReportsEverything checks that one run reports every problem,
// decoding and validation alike, sorted by position, and still returns the
// stack so that callers can check what can be checked.
func TestLoadReportsEverything(t *testing.T) {
	src := `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo, owner: me}
spec:
  project: demo
  templates: {partials: ["deploy/[a.tpl"]}
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    ai-slot: {from: dve, slots: yes}
  services:
    - name: api
      dependsOn: [web, postgres]
      manifests: [deploy/base/api/*.yaml.tpl]
    - name: web
      group: frontend
      dependsOn: [api]
      manifests: [deploy/base/web/*.yaml]
  secretz: []
`
	s, errs := loadString(t, src)
	if s == nil {
		t.Fatal("want a stack along with the problems")
	}
	want := []string{
		`services.yaml:3:24: unknown field "owner" in metadata`,
		`services.yaml:6:26: partial pattern "deploy/[a.tpl" is not a valid glob: missing closing ]`,
		`services.yaml:9:21: environment "ai-slot" inherits from unknown environment "dve" (did you mean "dev"?)`,
		`services.yaml:9:33: spec.environments.ai-slot.slots must be true or false, not the string "yes"`,
		`services.yaml:12:19: dependency cycle: api -> web -> api`,
		`services.yaml:12:19: service "api" in group "internal" depends on "web" in the later group "frontend" (a node may depend only on nodes of its own or an earlier group)`,
		`services.yaml:12:24: service "api" depends on unknown node "postgres" (declared: api, web)`,
		`services.yaml:17:19: manifest pattern "deploy/base/web/*.yaml" matches no file`,
		`services.yaml:18:3: unknown field "secretz" in spec (did you mean "secrets"?)`,
	}
	if got := strings.Join(lines(errs), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	// What decoded is kept.
	if s.Node("web") == nil || s.Spec.Environments["ai-slot"].From != "dve" {
		t.Errorf("the stack lost what decoded: %+v", s.Spec)
	}
}

// TestLoadAliasBomb checks that aliases cannot make a small file decode to
// an unbounded number of values.
func TestLoadAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "  vars: {m: &m [" + strings.Repeat("x, ", 999) + "x]}\n")
	b.WriteString("  services: [" + strings.Repeat("{name: a, manifests: *m}, ", 199) + "{name: a, manifests: *m}]\n")
	s, errs := loadString(t, b.String())
	if s == nil || len(errs) == 0 {
		t.Fatal("want a stack and problems")
	}
	want := "document too large: it holds more than 100000 values once aliases are expanded"
	found := false
	for _, d := range errs {
		found = found || d.Msg == want
	}
	if !found {
		t.Errorf("no %q among:\n%s", want, errs.Error())
	}
}
