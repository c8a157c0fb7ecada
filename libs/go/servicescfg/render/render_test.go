package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// writeStack writes files (slash-separated paths relative to the root) under
// a new stack root and returns the root.
func writeStack(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func newEngine(t testing.TB, files map[string]string, partials ...string) *Engine {
	t.Helper()
	e, err := New(writeStack(t, files), partials)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// testContext is the data of a node's manifest in dev.
func testContext() Context {
	return Context{
		Project:   "codex-k8s",
		Env:       "dev",
		Namespace: "codex-k8s-dev",
		Versions:  map[string]string{"postgres": "16", "control-plane": "0.1.0"},
		Vars:      map[string]string{"registry": "registry.local:5000", "log-level": "debug"},
		Config:    map[string]string{"CODEXK8S_DOMAIN": "example.test"},
		Runtime: Runtime{Profile: "non-prod", HotReload: true, Workspace: Workspace{
			Enabled: true, MountPath: "/workspace", Size: "10Gi", ClaimName: "workspace", UID: 1000, GID: 1000, FSGroup: 1000,
		}},
		Service: &Service{Name: "api-gateway", Group: "edge", Image: "registry.local:5000/api-gateway:dev", Kind: "go"},
	}
}

const helpers = `{{- define "app.labels" -}}
app.kubernetes.io/name: {{ .Service.Name }}
app.kubernetes.io/part-of: {{ .Project }}
{{- end }}
{{- define "app.name" }}{{ .Project }}-{{ .Service.Name }}{{ end }}
`

func TestRender(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		partials []string
		file     string // rendered with RenderFile when set
		text     string // else rendered with RenderString
		want     string
	}{{
		name:     "template call",
		files:    map[string]string{"deploy/partials/_helpers.tpl": helpers, "m.yaml": `name: {{ template "app.name" . }}`},
		partials: []string{"deploy/partials/*.tpl"},
		file:     "m.yaml",
		want:     "name: codex-k8s-api-gateway",
	}, {
		name:     "include piped to nindent",
		files:    map[string]string{"deploy/partials/_helpers.tpl": helpers, "m.yaml": "labels:{{ include \"app.labels\" . | nindent 2 }}\n"},
		partials: []string{"deploy/partials/*.tpl"},
		file:     "m.yaml",
		want:     "labels:\n  app.kubernetes.io/name: api-gateway\n  app.kubernetes.io/part-of: codex-k8s\n",
	}, {
		name: "partials from several files and globs",
		files: map[string]string{
			"deploy/partials/b.tpl": `{{ define "b" }}B{{ include "a" . }}{{ end }}`,
			"deploy/partials/a.tpl": `{{ define "a" }}A{{ end }}`,
			"shared/c.tpl":          `{{ define "c" }}C{{ template "b" . }}{{ end }}`,
		},
		partials: []string{"deploy/partials/*.tpl", "shared/c.tpl", "deploy/partials/a.tpl"},
		text:     `{{ template "c" . }}`,
		want:     "CBA",
	}, {
		name:     "tpl sees the partials and the data",
		files:    map[string]string{"p.tpl": helpers},
		partials: []string{"p.tpl"},
		text:     `{{ tpl "{{ .Env }}/{{ include \"app.name\" . }}" . }}`,
		want:     "dev/codex-k8s-api-gateway",
	}, {
		name:  "tpl sees the caller's defines",
		files: map[string]string{},
		text:  `{{ define "mine" }}M{{ end }}{{ tpl "<{{ template \"mine\" }}>" . }}`,
		want:  "<M>",
	}, {
		name:  "tpl text with defines of its own",
		files: map[string]string{},
		text:  `{{ tpl "{{ define \"t\" }}T{{ end }}{{ template \"t\" }}{{ tpl \"x\" . }}" . }}`,
		want:  "Tx",
	}, {
		name:  "required passes a value through",
		files: map[string]string{},
		text:  `{{ required "registry is required" .Vars.registry }}`,
		want:  "registry.local:5000",
	}, {
		name:  "index for keys with dashes",
		files: map[string]string{},
		text:  `{{ index .Vars "log-level" }} {{ index .Vars "unset" | default "none" }}`,
		want:  "debug none",
	}, {
		name:  "toYaml trims the trailing newline",
		files: map[string]string{},
		text:  "w:\n  {{- .Runtime.Workspace | toYaml | nindent 2 }}",
		want:  "w:\n  AccessMode: \"\"\n  ClaimName: workspace\n  Enabled: true\n  FSGroup: 1000\n  GID: 1000\n  MountPath: /workspace\n  Size: 10Gi\n  Source:\n    CredentialsSecret: \"\"\n    Git: \"\"\n    Image: \"\"\n    Ref: \"\"\n  StorageClass: \"\"\n  UID: 1000",
	}, {
		name:  "fromYaml and toJson",
		files: map[string]string{},
		text:  `{{ $m := fromYaml "a: 1\nb: [x, z]" }}{{ $m.b | toJson }} {{ (fromYamlArray "- 1\n- two") | toJson }} {{ (fromJson "{\"k\": true}").k }}`,
		want:  `["x","z"] [1,"two"] true`,
	}, {
		name:  "toYamlPretty indents lists",
		files: map[string]string{},
		text:  `{{ dict "args" (list "a" "true") "count" 1 | toYamlPretty }}`,
		want:  "args:\n  - a\n  - \"true\"\ncount: 1",
	}, {
		name:     "a partial may call a template the manifest defines",
		files:    map[string]string{"p.tpl": `{{ define "frame" }}[{{ template "body" . }}]{{ end }}`},
		partials: []string{"p.tpl"},
		text:     `{{ define "body" }}{{ .Env }}{{ end }}{{ include "frame" . }}`,
		want:     "[dev]",
	}, {
		name:  "block",
		files: map[string]string{},
		text:  `{{ block "b" . }}{{ .Namespace }}{{ end }}`,
		want:  "codex-k8s-dev",
	}, {
		name:  "sprig",
		files: map[string]string{},
		text:  `{{ .Project | upper | quote }} {{ "a-b" | replace "-" "_" }} {{ list 3 1 2 | sortAlpha | join "," }} {{ semverCompare ">=15" (index .Versions "postgres") }}`,
		want:  `"CODEX-K8S" a_b 1,2,3 true`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, tt.files, tt.partials...)
			var got string
			var err error
			if tt.file != "" {
				var b []byte
				b, err = e.RenderFile(context.Background(), tt.file, testContext())
				got = string(b)
			} else {
				got, err = e.RenderString(context.Background(), "text", tt.text, testContext())
			}
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestPartialsOrder(t *testing.T) {
	e := newEngine(t, map[string]string{
		"deploy/partials/c.tpl": "", "deploy/partials/a.tpl": "", "deploy/partials/b.tpl": "",
		"deploy/partials/notes.txt": "", "shared/z.tpl": "", "shared/dir.tpl/x": "",
	}, "shared/*.tpl", "deploy/partials/*.tpl", "deploy/partials/a.tpl")
	want := []string{"shared/z.tpl", "deploy/partials/a.tpl", "deploy/partials/b.tpl", "deploy/partials/c.tpl"}
	if got := e.Partials(); !slices.Equal(got, want) {
		t.Errorf("Partials() = %q, want %q", got, want)
	}
}

func TestWithGlob(t *testing.T) {
	root := writeStack(t, map[string]string{"x/a.tpl": `{{ define "a" }}A{{ end }}`})
	var asked []string
	glob := func(pattern string) ([]string, error) {
		asked = append(asked, pattern)
		return []string{"x/a.tpl"}, nil
	}
	e, err := New(root, []string{"x/**/*.tpl"}, WithGlob(glob))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.RenderString(context.Background(), "s", `{{ include "a" . }}`, nil); err != nil || got != "A" {
		t.Errorf("got %q, %v", got, err)
	}
	if !slices.Equal(asked, []string{"x/**/*.tpl"}) {
		t.Errorf("glob asked for %q", asked)
	}
}

// TestEveryConsumer renders one partial from a manifest, a bootstrap step
// script, a prompt given as a string, and a value of services.yaml.
func TestEveryConsumer(t *testing.T) {
	e := newEngine(t, map[string]string{
		"deploy/partials/_common.tpl":         `{{ define "domain" }}{{ .Project }}.{{ index .Config "CODEXK8S_DOMAIN" }}{{ end }}`,
		"deploy/base/api/ingress.yaml.tpl":    `host: {{ include "domain" . }}`,
		"bootstrap/remote/10_dns.sh.tpl":      `echo "{{ template "domain" . }}"`,
		"bootstrap/remote/unused-partial.tpl": ``,
	}, "deploy/partials/*.tpl")
	ctx := testContext()
	ctx.Service = nil
	manifest, err := e.RenderFile(context.Background(), "deploy/base/api/ingress.yaml.tpl", testContext())
	check(t, "manifest", string(manifest), err, "host: codex-k8s.example.test")
	script, err := e.RenderFile(context.Background(), filepath.Join(e.root, "bootstrap/remote/10_dns.sh.tpl"), ctx)
	check(t, "script", string(script), err, `echo "codex-k8s.example.test"`)
	prompt, err := e.RenderString(context.Background(), "prompt", `Domain [{{ include "domain" . }}]: `, ctx)
	check(t, "prompt", prompt, err, "Domain [codex-k8s.example.test]: ")
	ns, err := e.RenderAt(context.Background(), diag.Pos{File: "services.yaml", Line: 9, Col: 20}, `{{ include "domain" . | replace "." "-" }}`, ctx)
	check(t, "value", ns, err, "codex-k8s-example-test")
}

func check(t *testing.T, what, got string, err error, want string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	} else if got != want {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// TestDefinesDoNotLeak renders manifests that define the same name, and one
// that defines nothing, in turns: each sees only its own defines.
func TestDefinesDoNotLeak(t *testing.T) {
	e := newEngine(t, map[string]string{
		"p.tpl":  `{{ define "frame" }}[{{ template "body" . }}]{{ end }}`,
		"a.yaml": `{{ define "body" }}A{{ end }}{{ include "frame" . }}`,
		"b.yaml": `{{ define "body" }}B{{ end }}{{ include "frame" . }}`,
		"c.yaml": `{{ include (print "bo" "dy") . }}`,
		"d.yaml": `{{ define "body" }}{{ end }}{{ include "frame" . }}`,
	}, "p.tpl")
	// Names that would run together in a naive pool key.
	e2 := newEngine(t, map[string]string{
		"ab.yaml":  `{{ define "a" }}A{{ end }}{{ define "b" }}B{{ end }}{{ template "a" }}{{ template "b" }}`,
		"nul.yaml": "{{ define \"a\\x00b\" }}N{{ end }}{{ template \"a\\x00b\" }}",
	})
	for range 2 {
		for file, want := range map[string]string{"ab.yaml": "AB", "nul.yaml": "N"} {
			got, err := e2.RenderFile(context.Background(), file, nil)
			check(t, file, string(got), err, want)
		}
	}
	for i := range 3 {
		for _, c := range []struct{ file, want, err string }{
			{"a.yaml", "[A]", ""},
			{"c.yaml", "", `c.yaml:1: no template "body"`},
			{"b.yaml", "[B]", ""},
			{"d.yaml", "[]", ""},
		} {
			got, err := e.RenderFile(context.Background(), c.file, nil)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Errorf("round %d %s: error %v, want %s", i, c.file, err, c.err)
				}
				continue
			}
			check(t, fmt.Sprintf("round %d %s", i, c.file), string(got), err, c.want)
		}
	}
}

// TestConcurrent renders from many goroutines at once (run with -race): each
// output must be its own manifest's.
func TestConcurrent(t *testing.T) {
	files := map[string]string{"deploy/partials/_helpers.tpl": helpers + `{{ define "frame" }}{{ template "body" . }}{{ end }}`}
	for i := range 8 {
		files[fmt.Sprintf("m%d.yaml", i)] = fmt.Sprintf(
			`{{ define "body" }}%d{{ end }}{{ include "frame" . }}-{{ include "app.name" . }}-{{ tpl "{{ .Slot }}" . }}`, i)
	}
	e := newEngine(t, files, "deploy/partials/*.tpl")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for r := range 50 {
				i := (g + r) % 8
				ctx := testContext()
				ctx.Slot = fmt.Sprintf("%d%d", g, r)
				got, err := e.RenderFile(context.Background(), fmt.Sprintf("m%d.yaml", i), ctx)
				want := fmt.Sprintf("%d-codex-k8s-api-gateway-%d%d", i, g, r)
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("m%d.yaml: got %q, %v; want %q", i, got, err, want)
					return
				}
				if r%10 == 0 {
					if _, err := e.RenderString(context.Background(), "bad", `{{ .Vars.nope }}`, ctx); err == nil {
						errs <- errors.New("missing key did not fail")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNoEnvironment: templates cannot read the process environment, neither
// through the disabled functions nor through tpl.
func TestNoEnvironment(t *testing.T) {
	const secret = "s3cr3t-value"
	t.Setenv("CODEX_RENDER_TEST_SECRET", secret)
	e := newEngine(t, map[string]string{})
	for _, text := range []string{
		`{{ env "CODEX_RENDER_TEST_SECRET" }}`,
		`{{ expandenv "$CODEX_RENDER_TEST_SECRET" }}`,
		`{{ tpl "{{ env \"CODEX_RENDER_TEST_SECRET\" }}" . }}`,
		`{{ if false }}{{ env "CODEX_RENDER_TEST_SECRET" }}{{ end }}`,
	} {
		got, err := e.RenderString(context.Background(), "t", text, nil)
		if err == nil || strings.Contains(got, secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: got %q, %v", text, got, err)
		}
	}
	// The functions themselves fail too, should a check ever miss a call.
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		f := e.funcs[name].(func(...any) (string, error))
		if got, err := f("CODEX_RENDER_TEST_SECRET"); err == nil || got != "" {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
}
