package stack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// testRoot holds empty placeholder files that the test stacks' paths and
// globs resolve against: rendering is not this package's business.
const testRoot = "testdata/root"

// header is the first seven lines of most test stacks; their own lines start
// at line 8.
const header = `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
`

// minimal is the smallest valid stack: one environment, one service. It must
// stay valid as features grow.
const minimal = header + services

// services is the service of minimal, for stacks that add environments.
const services = `  services:
    - name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
`

func loadString(t *testing.T, src string) (*Stack, diag.List) {
	t.Helper()
	s, err := LoadBytes("services.yaml", testRoot, []byte(src))
	var list diag.List
	if err != nil && !errors.As(err, &list) {
		t.Fatalf("LoadBytes returned %T, want diag.List: %v", err, err)
	}
	return s, list
}

func lines(l diag.List) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.Error())
	}
	return out
}

func TestLoadValid(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			s, errs := loadString(t, tt.src)
			if len(errs) > 0 {
				t.Fatalf("want no problems, got:\n%s", errs.Error())
			}
			if s == nil {
				t.Fatal("nil stack")
			}
		})
	}
}

var validCases = []struct {
	name string
	src  string
}{
	{"minimal", minimal},
	{"full", `# yaml-language-server: $schema=../../schema/services.schema.json
apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata:
  name: codex-k8s
  labels: {team: platform}
spec:
  project: codex-k8s
  versions: {postgres: "16", control-plane: 0.1.0, redis: 7}
  vars: {registry: "registry.local:5000"}
  templates:
    partials: [deploy/partials/*.tpl]
  environments:
    dev:     {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev", vars: {registry: dev.local}}
    staging: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-staging"}
    ai-slot:
      from: dev
      slots: true
      namespaceTemplate: "{{ .Project }}-dev-{{ .Slot }}"
      labels: {codex-k8s.dev/slot: "true"}
      overlays:
        web: {enabled: false}
        api: {image: api:debug, manifests: [deploy/overlays/debug.yaml.tpl], vars: {LOG: debug}}
    prod:    {runtime: prod, namespaceTemplate: "{{ .Project }}-prod"}
  runtime:
    non-prod: {hotReload: true, workspace: {mountPath: /workspace, size: 10Gi, uid: 1000, gid: 1000, fsGroup: 1000}}
    prod:     {hotReload: false}
  deploy:
    order: [stateful, migrations, internal, edge, frontend]
    timeout: 5m
  infrastructure:
    - name: postgres
      manifests: [deploy/base/postgres/*.yaml.tpl]
      readiness: {timeout: 90s}
  services:
    - name: migrate
      group: migrations
      dependsOn: [postgres]
      manifests: [deploy/base/api/deployment.yaml.tpl]
    - name: api
      group: internal
      kind: go
      dependsOn: [postgres, migrate]
      manifests: ["deploy/base/api/*.yaml.tpl"]
      readiness:
        conditions: [{kind: Certificate, type: Ready}]
    - name: web
      group: frontend
      kind: frontend
      dependsOn: [api]
      when: '{{ ne .Env "prod" }}'
      manifests: [deploy/base/**/deployment.yaml.tpl]
  secrets:
    - name: platform-secrets
      data:
        GITHUB_PAT: {fromConfig: CODEXK8S_GITHUB_PAT}
        APP_SECRET_KEY: {generate: {length: 32}}
        SESSION_KEY: {generate: {charset: hex}}
  bootstrap:
    configFile: bootstrap/host/config.env
    variables:
      - {name: CODEXK8S_DOMAIN, required: true, description: "Public domain", pattern: "[a-z0-9.-]+", default: example.com}
      - {name: CODEXK8S_GITHUB_PAT, required: true, secret: true}
    steps:
      - {name: prepare-host, script: bootstrap/remote/00_prepare_host.sh, timeout: 10m, env: [CODEXK8S_DOMAIN]}
`},
	{"anchors and merge keys", header + `  services:
    - &base
      name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
    - <<: *base
      name: web
`},
	{"runtime through from", `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
  environments:
    base: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-{{ .Env }}"}
    dev: {from: base}
    ai-slot: {from: dev, slots: true}
  services:
    - {name: api, manifests: [deploy/base/api/deployment.yaml.tpl]}
`},
	{"parity: go service disabled where the profile does not hot-reload", header + `    qa:
      runtime: batch
      namespaceTemplate: "{{ .Project }}-qa"
      overlays: {api: {enabled: false}}
    eu: {runtime: batch, production: true, namespaceTemplate: "{{ .Project }}-eu"}
    ai-slot: {from: dev, slots: true, ttl: 24h, namespaceTemplate: "{{ .Project }}-{{ .Slot }}"}
  runtime:
    non-prod: {hotReload: true, workspace: {mountPath: /src}}
    batch: {hotReload: false}
  services:
    - {name: api, kind: go, manifests: [deploy/base/api/deployment.yaml.tpl]}
`},
}

func TestLoadDefaults(t *testing.T) {
	s, errs := loadString(t, header+`  runtime:
    non-prod: {workspace: {mountPath: /workspace}}
    debug: {hotReload: true}
  infrastructure:
    - {name: postgres, manifests: [deploy/base/postgres/statefulset.yaml.tpl]}
  services:
    - {name: api, manifests: [deploy/base/api/deployment.yaml.tpl]}
  secrets:
    - name: app
      data: {KEY: {generate: {}}}
`)
	if len(errs) > 0 {
		t.Fatalf("want no problems, got:\n%s", errs.Error())
	}
	if !reflect.DeepEqual(s.Spec.Deploy.Order, DefaultOrder) {
		t.Errorf("order = %v, want %v", s.Spec.Deploy.Order, DefaultOrder)
	}
	s.Spec.Deploy.Order[0] = "changed"
	if DefaultOrder[0] != GroupStateful {
		t.Fatal("the default order is shared with the stack")
	}
	pg, api := s.Node("postgres"), s.Node("api")
	if pg.Group != GroupStateful || !pg.Infrastructure {
		t.Errorf("postgres: group %q, infrastructure %v; want stateful, true", pg.Group, pg.Infrastructure)
	}
	if api.Group != GroupInternal || api.Infrastructure {
		t.Errorf("api: group %q, infrastructure %v; want internal, false", api.Group, api.Infrastructure)
	}
	np := s.Spec.Runtime[RuntimeNonProd]
	if !np.HotReload || np.Workspace == nil || np.Workspace.MountPath != "/workspace" {
		t.Errorf("non-prod = %+v, want hotReload kept from the default and the declared workspace", np)
	}
	if p := s.Spec.Runtime[RuntimeProd]; p == nil || p.HotReload {
		t.Errorf("prod = %+v, want the default {hotReload: false}", p)
	}
	if d := s.Spec.Runtime["debug"]; d == nil || !d.HotReload {
		t.Errorf("debug = %+v, want the declared profile", d)
	}
	if got := s.Spec.Secrets[0].Data["KEY"].Generate.Length; got != DefaultSecretLength {
		t.Errorf("generate length = %d, want %d", got, DefaultSecretLength)
	}
	if got := s.RuntimeNames(); !reflect.DeepEqual(got, []string{"debug", "non-prod", "prod"}) {
		t.Errorf("RuntimeNames = %v", got)
	}
}

func TestLoadServiceGroupDefault(t *testing.T) {
	s, errs := loadString(t, header+`  deploy: {order: [stateful, backend, web]}
  services:
    - {name: api, manifests: [deploy/base/api/deployment.yaml.tpl]}
`)
	if len(errs) > 0 {
		t.Fatalf("want no problems, got:\n%s", errs.Error())
	}
	if g := s.Node("api").Group; g != "web" {
		t.Errorf("group = %q, want the last group of an order without internal", g)
	}
}

func TestLoadPaths(t *testing.T) {
	abs, err := filepath.Abs(testRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, DefaultFile)
	src := strings.ReplaceAll(minimal, "deploy/base/api/deployment.yaml.tpl", "m.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, dir} {
		s, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %v", path, err)
		}
		if s.Path != file || s.Root != dir || s.File != file {
			t.Errorf("Load(%s): Path %q, Root %q, File %q", path, s.Path, s.Root, s.File)
		}
	}
	s, _ := loadString(t, minimal)
	if s.Root != abs || s.Path != filepath.Join(abs, "services.yaml") || s.File != "services.yaml" {
		t.Errorf("LoadBytes: Path %q, Root %q, File %q", s.Path, s.Root, s.File)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error wrapping os.ErrNotExist", err)
	}
	if got := displayPath("a/../services.yaml", "/x/services.yaml"); got != "services.yaml" {
		t.Errorf("displayPath = %q", got)
	}
}

// TestLoadErrors holds one case per rule: the exact position and message.
func TestLoadErrors(t *testing.T) {
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := loadString(t, tt.src)
			got := lines(errs)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// errorCases holds one case per rule: the exact position and message. The
// fuzz target seeds its corpus from them.
var errorCases = []struct {
	name string
	src  string
	want []string
}{
	// Decoding.
	{"unknown field", header + `  services:
    - name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
      dependson: [postgres]
`, []string{`services.yaml:11:7: unknown field "dependson" in spec.services[0] (did you mean "dependsOn"?)`}},
	{"unknown top-level field", minimal + "status: {}\n",
		[]string{`services.yaml:11:1: unknown field "status"`}},
	{"string where a list is expected", header + `  services:
    - name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
      dependsOn: postgres
`, []string{`services.yaml:11:18: spec.services[0].dependsOn must be a list, not the string "postgres"`}},
	{"list where a string is expected", strings.Replace(minimal, "{name: demo}", "{name: [demo]}", 1),
		[]string{`services.yaml:3:18: metadata.name must be a string, not a list`}},
	{"mapping where a list is expected", minimal + "  secrets: {name: app}\n",
		[]string{`services.yaml:11:12: spec.secrets must be a list, not a mapping`}},
	{"duplicate field", minimal + "  project: other\n",
		[]string{`services.yaml:11:3: duplicate key "project" in spec (first declared at line 5)`}},
	{"boolean expected", header + `  runtime:
    non-prod: {hotReload: "yes"}
`, []string{`services.yaml:9:27: spec.runtime.non-prod.hotReload must be true or false, not the string "yes"`}},
	{"integer expected", header + `  runtime:
    non-prod: {workspace: {uid: 1.5}}
`, []string{`services.yaml:9:33: spec.runtime.non-prod.workspace.uid must be an integer, not the number 1.5`}},
	{"invalid duration", minimal + "  deploy: {timeout: 5 minutes}\n",
		[]string{`services.yaml:11:21: spec.deploy.timeout: invalid duration "5 minutes" (write a Go duration such as "90s" or "5m")`}},
	{"duplicate key", header + "    dev: {runtime: prod}\n",
		[]string{`services.yaml:8:5: duplicate key "dev" in spec.environments (first declared at line 7)`}},

	// Document and header.
	{"invalid YAML", "apiVersion: [\n", []string{`services.yaml:1: invalid YAML: did not find expected node content`}},
	{"invalid YAML deep in a block", "apiVersion: codex-k8s.dev/v1alpha1\nspec:\n  services:\n    - name: a\n      manifests: [m/a.yaml]\n     group: internal\n",
		[]string{`services.yaml:6:6: invalid YAML: did not find expected '-' indicator (in the block that starts at line 3)`}},
	{"invalid YAML after things that are not syntax errors",
		"apiVersion: codex-k8s.dev/v1alpha1\nspec:\n  services:\n    - name: a\n      name: a\n      vars: {x: !!int abc}\n      manifests: [m/a.yaml,\n        m/b.yaml]\n     group: internal\n",
		[]string{`services.yaml:9:6: invalid YAML: did not find expected '-' indicator (in the block that starts at line 3)`}},
	{"tab indentation", "apiVersion: codex-k8s.dev/v1alpha1\nspec:\n\tproject: demo\n",
		[]string{`services.yaml:3: invalid YAML: found character that cannot start any token (the line is indented with a tab: YAML indentation takes spaces only)`}},
	{"empty file", "# nothing\n", []string{`services.yaml: the file is empty (start from apiVersion: codex-k8s.dev/v1alpha1, kind: ServiceStack)`}},
	{"two documents", minimal + "---\nkind: Other\n", []string{`services.yaml:11:1: the file holds more than one YAML document (keep one stack per file)`}},
	{"not a mapping", "- a\n- b\n", []string{`services.yaml:1:1: the file must hold a mapping with apiVersion, kind, metadata and spec, not a list`}},
	{"missing apiVersion", strings.TrimPrefix(minimal, "apiVersion: codex-k8s.dev/v1alpha1\n"),
		[]string{`services.yaml:1:1: missing required field "apiVersion"`}},
	{"unsupported apiVersion stops decoding", strings.Replace(minimal, "codex-k8s.dev/v1alpha1", "v1", 1) + "unknown: 1\n",
		[]string{`services.yaml:1:13: unsupported apiVersion "v1" (this loader reads apiVersion "codex-k8s.dev/v1alpha1")`}},
	{"unsupported kind", strings.Replace(minimal, "ServiceStack", "Deployment", 1),
		[]string{`services.yaml:2:7: unsupported kind "Deployment" (this loader reads kind "ServiceStack")`}},

	// Required fields.
	{"missing metadata.name", strings.Replace(minimal, "{name: demo}", "{}", 1),
		[]string{`services.yaml:3:11: missing required field "name" in metadata`}},
	{"missing project", strings.Replace(minimal, "  project: demo\n", "", 1),
		[]string{`services.yaml:5:3: missing required field "project" in spec`}},
	{"project not a DNS label", strings.Replace(minimal, "project: demo", "project: Demo_App", 1),
		[]string{`services.yaml:5:12: project "Demo_App" is not a valid DNS label (lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`}},
	{"missing environments", `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
`, []string{`services.yaml:5:3: missing required field "environments" in spec`}},
	{"no environment", `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
  environments: {}
`, []string{`services.yaml:6:17: spec.environments must declare at least one environment`}},
	{"environment without namespaceTemplate", header + "    prod: {runtime: prod}\n" + services,
		[]string{`services.yaml:8:5: environment "prod" has no namespaceTemplate (set namespaceTemplate or inherit one with from)`}},
	{"environment without runtime", header + "    prod: {namespaceTemplate: prod}\n" + services,
		[]string{`services.yaml:8:5: environment "prod" has no runtime (set runtime (e.g. non-prod or prod) or inherit one with from)`}},
	{"node without name", header + `  services:
    - manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:9:7: missing required field "name" in spec.services[0]`}},
	{"node without manifests", header + `  infrastructure:
    - name: postgres
`, []string{`services.yaml:9:7: missing required field "manifests" in infrastructure node "postgres"`}},
	{"node with empty manifests", header + `  services:
    - name: api
      manifests: []
`, []string{`services.yaml:10:18: manifests of service "api" must not be empty`}},

	// Nodes and dependencies.
	{"duplicate node name", header + `  infrastructure:
    - name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
  services:
    - name: api
      manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:12:13: duplicate node name "api" (first declared at line 9)`}},
	{"node name not a DNS label", header + `  services:
    - name: API
      manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:9:13: node name "API" is not a valid DNS label (lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`}},
	{"dependsOn naming nothing", header + `  infrastructure:
    - name: postgres
      manifests: [deploy/base/postgres/statefulset.yaml.tpl]
  services:
    - name: api
      dependsOn: [postgress]
      manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:13:19: service "api" depends on unknown node "postgress" (did you mean "postgres"?)`}},
	{"dependency cycle", header + `  services:
    - {name: c, dependsOn: [a], manifests: [deploy/base/api/deployment.yaml.tpl]}
    - {name: b, dependsOn: [c], manifests: [deploy/base/api/deployment.yaml.tpl]}
    - {name: a, dependsOn: [b], manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:11:29: dependency cycle: a -> b -> c -> a`}},
	{"self dependency", header + `  services:
    - {name: a, dependsOn: [a], manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:9:29: dependency cycle: a -> a`}},
	{"dependency listed twice", header + `  services:
    - {name: a, manifests: [deploy/base/api/deployment.yaml.tpl]}
    - {name: b, dependsOn: [a, a], manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:10:32: service "b" lists "a" twice in dependsOn`}},
	{"dependency on a later group", header + `  services:
    - {name: migrate, group: migrations, dependsOn: [api], manifests: [deploy/base/api/deployment.yaml.tpl]}
    - {name: api, group: internal, manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:9:54: service "migrate" in group "migrations" depends on "api" in the later group "internal" (a node may depend only on nodes of its own or an earlier group)`}},
	{"unknown group", header + `  services:
    - {name: api, group: internals, manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:9:26: service "api" has unknown group "internals" (did you mean "internal"?)`}},
	{"default group not in order", header + `  deploy: {order: [data, apps]}
  infrastructure:
    - {name: postgres, manifests: [deploy/base/postgres/statefulset.yaml.tpl]}
`, []string{`services.yaml:10:7: infrastructure node "postgres" has no group and the default group "stateful" is not in spec.deploy.order (name a group with group:, or add it to spec.deploy.order)`}},
	{"duplicate group in order", minimal + "  deploy: {order: [stateful, internal, stateful]}\n",
		[]string{`services.yaml:11:40: duplicate group "stateful" in spec.deploy.order (first declared at line 11)`}},
	{"unknown node kind", header + `  services:
    - {name: api, kind: python, manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:9:25: service "api" has unknown kind "python" (use go, frontend or other)`}},

	// Environments.
	{"environment name not a DNS label", header + "    Prod: {runtime: prod, namespaceTemplate: prod}\n" + services,
		[]string{`services.yaml:8:5: environment name "Prod" is not a valid DNS label (lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`}},
	{"unknown from", header + "    ai-slot: {from: deb, slots: true}\n" + services,
		[]string{`services.yaml:8:21: environment "ai-slot" inherits from unknown environment "deb" (did you mean "dev"?)`}},
	{"from cycle", header + "    b: {from: c}\n    c: {from: b}\n    d: {from: c}\n" + services,
		[]string{`services.yaml:8:15: environment cycle: b -> c -> b`}},
	{"unknown runtime profile", header + "    prod: {runtime: production, namespaceTemplate: prod}\n" + services,
		[]string{`services.yaml:8:21: environment "prod" uses unknown runtime profile "production" (declared: non-prod, prod)`}},
	{"overlay of an unknown node", header + "    staging: {from: dev, overlays: {apii: {image: x}}}\n" + services,
		[]string{`services.yaml:8:37: environment "staging" overlays unknown node "apii" (did you mean "api"?)`}},
	{"invalid namespaceTemplate", header + "    prod: {runtime: prod, namespaceTemplate: \"{{ .Project }-prod\"}\n" + services,
		[]string{`services.yaml:8:46: namespaceTemplate of environment "prod" is not a valid template: unexpected "}" in operand`}},
	{"invalid when", header + `  services:
    - name: api
      when: "{{ if eq .Env \"prod\" }}"
      manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:10:13: when of service "api" is not a valid template: unexpected EOF`}},
	{"invalid when on a later line", header + `  services:
    - name: api
      when: |
        {{- if eq .Env "prod" -}}
        {{ end }}{{ else }}
      manifests: [deploy/base/api/deployment.yaml.tpl]
`, []string{`services.yaml:12: when of service "api" is not a valid template: unexpected {{else}}`}},
	{"hot reload in prod", minimal + "  runtime: {prod: {hotReload: true}}\n",
		[]string{`services.yaml:11:31: runtime profile "prod" must not enable hotReload (runtime parity: hot reload in every non-prod environment, never in prod)`}},
	// Runtime parity.
	{"go service without hot reload or workspace", header + `  runtime: {non-prod: {hotReload: false}}
  services:
    - {name: api, kind: go, manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:7:20: environment "dev" deploys go service "api" but its runtime profile "non-prod" lacks hotReload: true and a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; set them on the profile, or mark the environment production: true)`}},
	{"frontend service without a workspace, inherited runtime", header + `    ai-slot: {from: dev, slots: true, namespaceTemplate: "{{ .Project }}-{{ .Slot }}"}
  services:
    - {name: web, kind: frontend, manifests: [deploy/base/web/deployment.yaml.tpl]}
`, []string{`services.yaml:7:20: environment "dev" deploys frontend service "web" but its runtime profile "non-prod" lacks a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; set them on the profile, or mark the environment production: true)`, `services.yaml:8:5: environment "ai-slot" deploys frontend service "web" but its runtime profile "non-prod" lacks a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; set them on the profile, or mark the environment production: true)`}},
	{"go service disabled by a parent's overlay, enabled again by a child", header + `    qa: {runtime: batch, namespaceTemplate: "{{ .Project }}-qa", overlays: {api: {enabled: false}}}
    qa-eu: {from: qa, namespaceTemplate: "{{ .Project }}-qa-eu"}
    qa-us: {from: qa-eu, namespaceTemplate: "{{ .Project }}-qa-us", overlays: {api: {enabled: true}}}
  runtime: {non-prod: {hotReload: true, workspace: {mountPath: /src}}, batch: {hotReload: false}}
  services:
    - {name: api, kind: go, manifests: [deploy/base/api/deployment.yaml.tpl]}
`, []string{`services.yaml:10:5: environment "qa-us" deploys go service "api" but its runtime profile "batch" lacks hotReload: true and a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; set them on the profile, or mark the environment production: true)`}},
	{"environment named prod on the non-prod runtime", header + `    prod: {runtime: non-prod, namespaceTemplate: "{{ .Project }}"}
  runtime: {non-prod: {workspace: {mountPath: /src}}}
` + services, []string{`services.yaml:8:21: environment "prod" is production (it is named prod) but its runtime profile "non-prod" enables hotReload and declares a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; use runtime: prod or a profile without them)`}},
	{"production: true on a hot-reloading profile", header + `    live: {runtime: non-prod, production: true, namespaceTemplate: "{{ .Project }}-live"}
  runtime: {non-prod: {hotReload: true}}
` + services, []string{`services.yaml:8:21: environment "live" is production (production: true) but its runtime profile "non-prod" enables hotReload (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one; use runtime: prod or a profile without them)`}},
	{"workspace on the prod profile", minimal + "  runtime: {prod: {workspace: {mountPath: /src}}}\n", []string{`services.yaml:11:31: runtime profile "prod" must not declare a workspace (runtime parity: production never hot-reloads nor mounts a workspace, every other environment hot-reloads its go and frontend services from one)`}},
	{"negative ttl", header + `    ai-slot: {from: dev, slots: true, ttl: -1h}
` + services, []string{`services.yaml:8:44: ttl of environment "ai-slot" must not be negative`}},
	{"ttl outside a slot environment", header + `    staging: {from: dev, ttl: 24h}
` + services, []string{`services.yaml:8:31: environment "staging" sets ttl but is not a slot environment (set slots: true, or drop ttl: only slot namespaces expire)`}},
	{"workspace size", minimal + "  runtime: {non-prod: {workspace: {size: lots}}}\n",
		[]string{`services.yaml:11:42: workspace size "lots" of runtime profile "non-prod" is not a positive storage size (write a Kubernetes quantity such as 10Gi or 500Mi)`}},
	{"workspace mount path", minimal + "  runtime: {non-prod: {workspace: {mountPath: workspace, accessMode: RWX}}}\n",
		[]string{
			`services.yaml:11:47: workspace mountPath "workspace" of runtime profile "non-prod" must be an absolute path`,
			`services.yaml:11:70: workspace accessMode "RWX" of runtime profile "non-prod" is not a volume access mode (use ReadWriteOnce, ReadWriteMany, ReadOnlyMany or ReadWriteOncePod)`,
		}},
	{"workspace source without git", minimal + "  runtime: {non-prod: {workspace: {source: {ref: main}}}}\n",
		[]string{`services.yaml:11:44: workspace source of runtime profile "non-prod" needs git (the repository URL)`}},
	{"workspace source URL", minimal + "  runtime: {non-prod: {workspace: {source: {git: 'git@example.com:shop.git', ref: '-x', credentialsSecret: Bad_Name}}}}\n",
		[]string{
			`services.yaml:11:50: workspace source git "git@example.com:shop.git" of runtime profile "non-prod" is not a repository URL (write an https://, http:// or git:// URL)`,
			`services.yaml:11:83: workspace source ref "-x" of runtime profile "non-prod" is not a branch or tag name`,
			`services.yaml:11:108: workspace source credentialsSecret "Bad_Name" of runtime profile "non-prod" is not a Secret name`,
		}},
	{"workspace source URL with a token", minimal + "  runtime: {non-prod: {workspace: {source: {git: 'https://x:secret@example.com/shop.git'}}}}\n",
		[]string{`services.yaml:11:50: workspace source git URL of runtime profile "non-prod" must not hold credentials (put the token in a Secret and name it in credentialsSecret)`}},

	// Paths and globs.
	{"invalid glob", header + `  services:
    - name: api
      manifests:
        - deploy/[a.yaml
`, []string{`services.yaml:11:11: manifest pattern "deploy/[a.yaml" is not a valid glob: missing closing ]`}},
	{"glob leaving the root", header + `  services:
    - name: api
      manifests: [../outside/*.yaml]
`, []string{`services.yaml:10:19: manifest pattern "../outside/*.yaml" leaves the stack root`}},
	{"absolute path", header + `  services:
    - name: api
      manifests: [/etc/hosts]
`, []string{`services.yaml:10:19: manifest "/etc/hosts" is an absolute path: write it relative to the stack root`}},
	{"glob matching nothing", header + `  services:
    - name: api
      manifests: [deploy/base/api/*.json]
`, []string{`services.yaml:10:19: manifest pattern "deploy/base/api/*.json" matches no file`}},
	{"path that does not exist", header + `  services:
    - name: api
      manifests: [deploy/base/api/ingress.yaml.tpl]
`, []string{`services.yaml:10:19: manifest "deploy/base/api/ingress.yaml.tpl" does not exist`}},
	{"directory instead of files", header + `  services:
    - name: api
      manifests: [deploy/base/api]
`, []string{`services.yaml:10:19: manifest "deploy/base/api" is a directory, not a file (use a glob such as "deploy/base/api/*.yaml")`}},
	{"overlay manifest", header + "    staging: {from: dev, overlays: {api: {manifests: [\"deploy/[\"]}}}\n" + services,
		[]string{`services.yaml:8:55: manifest pattern "deploy/[" is not a valid glob: missing closing ]`}},
	{"partial matching nothing", minimal + "  templates: {partials: [deploy/partials/*.tmpl]}\n",
		[]string{`services.yaml:11:26: partial pattern "deploy/partials/*.tmpl" matches no file`}},
	{"bad config file", minimal + "  bootstrap: {configFile: /etc/codex/config.env}\n",
		[]string{`services.yaml:11:27: config file "/etc/codex/config.env" is an absolute path: write it relative to the stack root`}},
	{"missing step script", minimal + `  bootstrap:
    steps: [{name: prepare, script: bootstrap/remote/01_missing.sh}]
`, []string{`services.yaml:12:37: step script "bootstrap/remote/01_missing.sh" does not exist`}},
	{"step script glob", minimal + `  bootstrap:
    steps: [{name: prepare, script: "bootstrap/remote/*.sh"}]
`, []string{`services.yaml:12:37: step script "bootstrap/remote/*.sh" must be a path, not a pattern (name one file, without *, ?, [ or \)`}},

	// Secrets.
	{"secret value with neither source", minimal + `  secrets:
    - name: app
      data: {KEY: {}}
`, []string{`services.yaml:13:19: secret "app" key "KEY" sets neither fromConfig nor generate (set exactly one of them)`}},
	{"secret value with both sources", minimal + `  secrets:
    - name: app
      data: {KEY: {fromConfig: PAT, generate: {}}}
  bootstrap: {variables: [{name: PAT, secret: true}]}
`, []string{`services.yaml:13:19: secret "app" key "KEY" sets both fromConfig and generate (set exactly one of them)`}},
	{"fromConfig naming no variable", minimal + `  secrets:
    - name: app
      data: {PAT: {fromConfig: GITHUB_PAD}}
  bootstrap: {variables: [{name: GITHUB_PAT, secret: true}]}
`, []string{`services.yaml:13:32: secret "app" key "PAT" reads undeclared bootstrap variable "GITHUB_PAD" (did you mean "GITHUB_PAT"?)`}},
	{"fromConfig without bootstrap", minimal + `  secrets:
    - name: app
      data: {PAT: {fromConfig: GITHUB_PAT}}
`, []string{`services.yaml:13:32: secret "app" key "PAT" reads undeclared bootstrap variable "GITHUB_PAT" (declare it in spec.bootstrap.variables)`}},
	{"generate length 0", minimal + `  secrets:
    - name: app
      data: {KEY: {generate: {length: 0}}}
`, []string{`services.yaml:13:39: secret "app" key "KEY": generate length 0 is out of range 1..4096`}},
	{"generate length too long", minimal + `  secrets:
    - name: app
      data: {KEY: {generate: {length: 4097}}}
`, []string{`services.yaml:13:39: secret "app" key "KEY": generate length 4097 is out of range 1..4096`}},
	{"generate charset", minimal + `  secrets:
    - name: app
      data: {KEY: {generate: {charset: utf8}}}
`, []string{`services.yaml:13:40: secret "app" key "KEY": unknown charset "utf8" (use alphanumeric, hex or base64)`}},
	{"secret name", minimal + `  secrets:
    - name: App_Secrets
      data: {KEY: {generate: {}}}
`, []string{`services.yaml:12:13: secret name "App_Secrets" is not a valid DNS subdomain (DNS labels joined by '.', at most 253 characters)`}},
	{"duplicate secret name", minimal + `  secrets:
    - name: app
      data: {KEY: {generate: {}}}
    - name: app
      data: {OTHER: {generate: {}}}
`, []string{`services.yaml:14:13: duplicate secret name "app" (first declared at line 12)`}},
	{"secret key", minimal + `  secrets:
    - name: app
      data: {"a key": {generate: {}}}
`, []string{`services.yaml:13:14: secret "app" key "a key" is not a valid Secret key (letters, digits, '-', '_' and '.')`}},
	{"secret without data", minimal + `  secrets:
    - name: app
`, []string{`services.yaml:12:7: missing required field "data" in secret "app"`}},

	// Bootstrap.
	{"variable name", minimal + `  bootstrap:
    variables: [{name: domain}]
`, []string{`services.yaml:12:24: bootstrap variable name "domain" is not an environment variable name (upper case letters, digits and '_', not starting with a digit)`}},
	{"duplicate variable", minimal + `  bootstrap:
    variables:
      - {name: DOMAIN}
      - {name: DOMAIN}
`, []string{`services.yaml:14:16: duplicate bootstrap variable "DOMAIN" (first declared at line 13)`}},
	{"variable pattern", minimal + `  bootstrap:
    variables: [{name: PORT, pattern: "[0-9+"}]
`, []string{"services.yaml:12:39: invalid pattern \"[0-9+\" of bootstrap variable \"PORT\": missing closing ]: `[0-9+`"}},
	{"variable default against its pattern", minimal + `  bootstrap:
    variables: [{name: PORT, pattern: "[0-9]+", default: http}]
`, []string{`services.yaml:12:58: default "http" of bootstrap variable "PORT" does not match its pattern "[0-9]+"`}},
	{"duplicate step", minimal + `  bootstrap:
    steps:
      - {name: prepare, script: bootstrap/remote/00_prepare_host.sh}
      - {name: prepare, script: bootstrap/remote/00_prepare_host.sh}
`, []string{`services.yaml:14:16: duplicate bootstrap step "prepare" (first declared at line 13)`}},
	{"step without script", minimal + `  bootstrap:
    steps: [{name: prepare}]
`, []string{`services.yaml:12:13: missing required field "script" in bootstrap step "prepare"`}},
	{"step env entry", minimal + `  bootstrap:
    steps: [{name: prepare, script: bootstrap/remote/00_prepare_host.sh, env: [domain]}]
`, []string{`services.yaml:12:80: env entry "domain" of bootstrap step "prepare" is not an environment variable name (upper case letters, digits and '_', not starting with a digit)`}},
	{"target naming an undeclared variable", minimal + `  bootstrap:
    variables: [{name: HOST}]
    target: {host: HOST, user: SSH_USER}
`, []string{`services.yaml:13:32: bootstrap target user names "SSH_USER", which is not a bootstrap variable (declare it under spec.bootstrap.variables)`}},
	{"step files", minimal + `  bootstrap:
    steps:
      - name: prepare
        script: bootstrap/remote/00_prepare_host.sh
        files: [bootstrap/remote/missing.bin, bootstrap/remote/00_prepare_host.sh, other/00_prepare_host.sh]
`, []string{`services.yaml:15:17: step file "bootstrap/remote/missing.bin" does not exist`, `services.yaml:15:84: bootstrap step "prepare" uploads two files named "00_prepare_host.sh"`, `services.yaml:15:84: step file "other/00_prepare_host.sh" does not exist`}},
}
