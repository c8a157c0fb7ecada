package bootstrap_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

func TestRender(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"services.yaml": `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: t}
spec:
  project: demo
  templates: {partials: [partials/*.tpl]}
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
  services:
    - {name: api, manifests: [m/a.yaml]}
  bootstrap:
    steps:
      - {name: one, script: steps/one.sh}
      - {name: two, script: steps/two.sh}
`,
		"partials/l.tpl": `{{ define "sh.prelude" }}set -euo pipefail{{ end }}`,
		"m/a.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"steps/one.sh":   "#!/bin/sh\n{{ include \"sh.prelude\" . }}\necho {{ .Project }} {{ .Namespace }}\n",
		"steps/two.sh":   "#!/bin/sh\n{{ .Service.Name }}\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := stack.Load(filepath.Join(root, "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := plan.NewEngine(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(context.Background(), s, plan.Options{Env: "dev", Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := bootstrap.Render(s, e, p.Context)
	if err == nil || !strings.Contains(err.Error(), "steps/two.sh:2: at <.Service.Name>: .Service is not set") {
		t.Fatalf("error = %v", err)
	}
	if len(scripts) != 1 || scripts[0].Step != "one" || string(scripts[0].Data) != "#!/bin/sh\nset -euo pipefail\necho demo demo-dev\n" {
		t.Errorf("scripts = %+v", scripts)
	}
}
