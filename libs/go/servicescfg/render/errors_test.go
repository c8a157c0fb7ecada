package render

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// entryPos places partials entry i at its line in a services.yaml.
func entryPos(i int) diag.Pos { return diag.Pos{File: "services.yaml", Line: 10 + i, Col: 9} }

// TestNewErrors: one case per problem New reports, each with its exact
// PATH:LINE: message.
func TestNewErrors(t *testing.T) {
	a := `{{ define "app.labels" }}a{{ end }}`
	tests := []struct {
		name     string
		files    map[string]string
		partials []string
		glob     func(string) ([]string, error)
		want     string
	}{{
		name:     "glob matches nothing",
		partials: []string{"deploy/nope/*.tpl"},
		want:     `services.yaml:10:9: partial pattern "deploy/nope/*.tpl" matches no file`,
	}, {
		name:     "path matches nothing",
		files:    map[string]string{"deploy/partials/a.tpl": a},
		partials: []string{"deploy/partials/a.tpl", "deploy/partials/b.tpl"},
		want:     `services.yaml:11:9: partial "deploy/partials/b.tpl" matches no file`,
	}, {
		name:     "directories do not match",
		files:    map[string]string{"deploy/partials.tpl/a": a},
		partials: []string{"deploy/*.tpl"},
		want:     `services.yaml:10:9: partial pattern "deploy/*.tpl" matches no file`,
	}, {
		name:     "invalid glob",
		partials: []string{"deploy/[partials/*.tpl"},
		want:     `services.yaml:10:9: partial pattern "deploy/[partials/*.tpl" is not a valid glob: missing closing ]`,
	}, {
		name:     "outside the stack root",
		partials: []string{"../shared/*.tpl"},
		want:     `services.yaml:10:9: partial pattern "../shared/*.tpl" leaves the stack root`,
	}, {
		name:     "absolute",
		partials: []string{"/etc/passwd"},
		want:     `services.yaml:10:9: partial pattern "/etc/passwd" is an absolute path: write it relative to the stack root`,
	}, {
		name:     "a glob function's match outside the root",
		partials: []string{"x"},
		glob:     func(string) ([]string, error) { return []string{"../x.tpl"}, nil },
		want:     `services.yaml:10:9: partial "x" matches ../x.tpl, outside the stack root`,
	}, {
		name:     "a glob function's error",
		partials: []string{"x/["},
		glob:     func(p string) ([]string, error) { return nil, errors.New(`pattern "x/[" is not a valid glob`) },
		want:     `services.yaml:10:9: partial pattern "x/[" is not a valid glob`,
	}, {
		name: "defined twice across files",
		files: map[string]string{
			"deploy/partials/a.tpl": a,
			"deploy/partials/b.tpl": "{{/* b */}}\n\n{{ define \"app.labels\" }}b{{ end }}",
		},
		partials: []string{"deploy/partials/*.tpl"},
		want:     `deploy/partials/b.tpl:3: template "app.labels" already defined in deploy/partials/a.tpl:1`,
	}, {
		name:     "defined twice in one file",
		files:    map[string]string{"p.tpl": "{{ define \"x\" }}1{{ end }}\n{{- /* {{ define \"x\" }} */ -}}\n{{ define \"y\" }}{{ end }}\n{{ define \"x\" }}2{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:4: template "x" already defined in p.tpl:1`,
	}, {
		name:     "defined twice in one file, once empty",
		files:    map[string]string{"p.tpl": "{{ define \"x\" }}1{{ end }}\n{{ block \"x\" . }}{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:2: template "x" already defined in p.tpl:1`,
	}, {
		name:     "parse error",
		files:    map[string]string{"p.tpl": "{{ define \"x\" }}\n{{ .Project }\n{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:2: unexpected "}" in operand`,
	}, {
		name:     "unknown function",
		files:    map[string]string{"p.tpl": "\n{{ define \"x\" }}{{ nope }}{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:2: function "nope" not defined`,
	}, {
		name:     "env in a partial",
		files:    map[string]string{"p.tpl": "{{ define \"x\" }}\n{{ if false }}{{ env \"HOME\" }}{{ end }}{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:2: function "env" is not available: templates cannot read the process environment (use .Config or .Vars)`,
	}, {
		name:     "reserved name",
		files:    map[string]string{"p.tpl": "{{ define \"\\x00main\" }}{{ end }}"},
		partials: []string{"p.tpl"},
		want:     `p.tpl:1: template name "\x00main" is reserved`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeStack(t, tt.files)
			opts := []Option{WithPositions(entryPos)}
			if tt.glob != nil {
				opts = append(opts, WithGlob(tt.glob))
			}
			_, err := New(root, tt.partials, opts...)
			assertError(t, err, tt.want)
		})
	}
}

func TestNewReportsEverything(t *testing.T) {
	root := writeStack(t, map[string]string{
		"a.tpl": `{{ define "x" }}{{ end }}`,
		"b.tpl": `{{ define "x" }}{{ end }}`,
		"c.tpl": `{{ .Project `,
	})
	_, err := New(root, []string{"*.tpl", "nope/*.tpl"})
	assertError(t, err, `partial pattern "nope/*.tpl" matches no file
b.tpl:1: template "x" already defined in a.tpl:1
c.tpl:1: unclosed action`)
	if _, err := New("relative", nil); err == nil || err.Error() != `stack root "relative" is not an absolute path` {
		t.Errorf("relative root: %v", err)
	}
}

// TestRenderErrors: one case per problem a render reports, each with its
// exact PATH:LINE: message.
func TestRenderErrors(t *testing.T) {
	partials := map[string]string{
		"deploy/partials/_helpers.tpl": `{{ define "app.labels" }}app: {{ .Service.Name }}{{ end }}
{{ define "vars" }}{{ .Vars.nope }}{{ end }}
{{ define "late" }}{{ template "body" . }}{{ end }}
{{ define "deep" }}
{{- include "deeper" . }}{{ end }}
{{ define "deeper" }}{{ fail "stop here" }}{{ end }}
{{ define "loop" }}{{ include "loop" . }}{{ end }}
{{ define "tpl" }}{{ tpl .Vars.registry . }}{{ end }}`,
	}
	tests := []struct {
		name string
		file string // the manifest's name, m.yaml unless set
		text string
		data any // testContext() unless set
		want string
	}{{
		name: "parse error",
		text: "a: 1\nb: {{ .Project }}\n{{ end }}",
		want: `m.yaml:3: unexpected {{end}}`,
	}, {
		name: "unknown function",
		text: "a: 1\nb: {{ .Project | nope }}\n",
		want: `m.yaml:2: function "nope" not defined`,
	}, {
		name: "manifest redefines a partial's define",
		text: "a: 1\n{{ define \"app.labels\" }}{{ end }}",
		want: `m.yaml:2: template "app.labels" already defined in deploy/partials/_helpers.tpl:1`,
	}, {
		name: "defined twice in the manifest",
		text: "{{ define \"a\" }}1{{ end }}\n\n{{ define \"a\" }}2{{ end }}",
		want: `m.yaml:3: template "a" already defined in m.yaml:1`,
	}, {
		name: "missing template",
		text: "a: 1\nb: {{ template \"nope\" . }}",
		want: `m.yaml:2: no template "nope"`,
	}, {
		name: "missing template, include",
		text: "a: 1\nb: {{ include \"nope\" . | nindent 2 }}",
		want: `m.yaml:2: no template "nope"`,
	}, {
		name: "missing template in a branch that does not run",
		text: "{{ if false }}\n{{ template \"nope\" . }}{{ end }}",
		want: `m.yaml:2: no template "nope"`,
	}, {
		name: "missing template, dynamic name",
		text: "a: 1\nb: {{ include (printf \"%s\" \"nope\") . }}",
		want: `m.yaml:2: no template "nope"`,
	}, {
		name: "missing template left to the manifest by a partial",
		text: "a: 1\nb: {{ include \"late\" . }}",
		want: `deploy/partials/_helpers.tpl:3: no template "body", rendering m.yaml`,
	}, {
		name: "missing template left to the manifest, dynamic include",
		text: "a: 1\nb: {{ include (print \"la\" \"te\") . }}",
		want: `deploy/partials/_helpers.tpl:3: no template "body", rendering m.yaml`,
	}, {
		name: "missing map key",
		text: "a: 1\nb: {{ .Vars.nope }}",
		want: `m.yaml:2: at <.Vars.nope>: map has no entry for key "nope" (declare it under spec.vars or the environment's vars)`,
	}, {
		name: "bootstrap variable without a value",
		text: "a: 1\nb: {{ .Config.DOMAIN }}",
		want: `m.yaml:2: at <.Config.DOMAIN>: map has no entry for key "DOMAIN" (a bootstrap variable without a value: declare it in spec.bootstrap.variables and set it in the config file or as CODEX_VAR_NAME in the environment, or read it with index .Config "NAME" | default ...; secret variables never reach .Config)`,
	}, {
		name: "missing map key in a partial",
		text: "a: 1\nb: {{ include \"vars\" . }}",
		want: `deploy/partials/_helpers.tpl:2: at <.Vars.nope>: map has no entry for key "nope", rendering m.yaml (declare it under spec.vars or the environment's vars)`,
	}, {
		name: "missing map key with the data of a call",
		text: "{{ define \"x\" }}\n{{ .nope }}{{ end }}{{ template \"x\" dict \"a\" 1 }}",
		want: `m.yaml:2: at <.nope>: map has no entry for key "nope"`,
	}, {
		name: "missing field",
		text: "a: 1\nb: {{ .Namespaces }}",
		want: `m.yaml:2: at <.Namespaces>: the template context has no field Namespaces (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service)`,
	}, {
		name: "missing field through a pointer",
		text: "a: 1\nb: {{ .Service.Port }}",
		want: `m.yaml:2: at <.Service.Port>: .Service has no field Port (it has .Name .Group .Image .Kind .DependsOn .Vars .HotReload)`,
	}, {
		name: ".Service outside a node's manifests",
		file: "bootstrap/remote/00_prepare_host.sh",
		text: "#!/bin/sh\n{{ include \"app.labels\" . }}",
		data: Context{Project: "p"},
		want: `deploy/partials/_helpers.tpl:1: at <.Service.Name>: .Service is not set, rendering bootstrap/remote/00_prepare_host.sh (only a node's manifests have a service)`,
	}, {
		name: "nested includes fail at the innermost template",
		text: "a: 1\n\nb: {{ include \"deep\" . }}",
		want: `deploy/partials/_helpers.tpl:6: stop here, rendering m.yaml`,
	}, {
		name: "required",
		text: "a: 1\nimage: {{ required \"image is required\" (index .Vars \"image\") }}",
		want: `m.yaml:2: image is required`,
	}, {
		name: "required nil",
		text: "a: 1\nimage: {{ required \"image is required\" nil }}",
		want: `m.yaml:2: image is required`,
	}, {
		name: "fail",
		text: "{{ if eq .Env \"dev\" }}\n{{ fail \"not in dev\" }}{{ end }}",
		want: `m.yaml:2: not in dev`,
	}, {
		name: "include recursion",
		text: "a: 1\n{{ include \"loop\" . }}",
		want: `deploy/partials/_helpers.tpl:7: include "loop": more than 1000 nested include and tpl calls, rendering m.yaml`,
	}, {
		name: "tpl recursion",
		text: "{{ define \"t\" }}{{ tpl \"{{ include \\\"t\\\" . }}\" . }}{{ end }}{{ include \"t\" . }}",
		want: `m.yaml:1: tpl text line 1: include "t": more than 1000 nested include and tpl calls`,
	}, {
		name: "error in tpl text",
		text: "a: 1\nb: {{ tpl \"x\\n{{ .Vars.nope }}\" . }}",
		want: `m.yaml:2: tpl text line 2: at <.Vars.nope>: map has no entry for key "nope" (declare it under spec.vars or the environment's vars)`,
	}, {
		name: "parse error in tpl text",
		text: "a: 1\nb: {{ tpl \"{{ .Env \" . }}",
		want: `m.yaml:2: tpl text line 1: unclosed action`,
	}, {
		name: "tpl text redefines a partial's define",
		text: "a: 1\nb: {{ tpl \"{{ define \\\"app.labels\\\" }}{{ end }}\" . }}",
		want: `m.yaml:2: tpl text line 1: template "app.labels" already defined in deploy/partials/_helpers.tpl:1`,
	}, {
		name: "tpl text redefines the caller's define",
		text: "{{ define \"a\" }}{{ end }}\nb: {{ tpl \"{{ define \\\"a\\\" }}{{ end }}\" . }}",
		want: `m.yaml:2: tpl text line 1: template "a" already defined by the template that calls tpl`,
	}, {
		name: "tpl text in a partial",
		text: "a: 1\nb: {{ include \"tpl\" . }}",
		data: Context{Vars: map[string]string{"registry": "{{ .Nope }}"}},
		want: `deploy/partials/_helpers.tpl:8: tpl text line 1: at <.Nope>: the template context has no field Nope (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service), rendering m.yaml`,
	}, {
		name: "function error",
		text: "a: 1\nb: {{ fromJson \"[\" }}",
		want: `m.yaml:2: at <fromJson "[">: error calling fromJson: not a JSON object: unexpected end of JSON input`,
	}, {
		name: "env",
		text: "a: 1\nb: {{ env \"HOME\" }}",
		want: `m.yaml:2: function "env" is not available: templates cannot read the process environment (use .Config or .Vars)`,
	}, {
		name: "expandenv",
		text: "a: 1\nb: {{ \"$HOME\" | expandenv }}",
		want: `m.yaml:2: function "expandenv" is not available: templates cannot read the process environment (use .Config or .Vars)`,
	}, {
		name: "getHostByName",
		text: "a: 1\nb: {{ getHostByName \"example.com\" }}",
		want: `m.yaml:2: function "getHostByName" is not available: templates cannot reach the network (put the address in .Vars)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "m.yaml"
			}
			files := map[string]string{file: tt.text}
			for k, v := range partials {
				files[k] = v
			}
			e := newEngine(t, files, "deploy/partials/*.tpl")
			var data any = testContext()
			if tt.data != nil {
				data = tt.data
			}
			out, err := e.RenderFile(context.Background(), file, data)
			if out != nil {
				t.Errorf("output %q with an error", out)
			}
			assertError(t, err, tt.want)
			// The same text given as a string fails the same way, also when
			// its parse comes from the cache.
			for range 2 {
				_, err = e.RenderString(context.Background(), file, tt.text, data)
				assertError(t, err, tt.want)
			}
		})
	}
}

// TestSharedText renders one text under several names: a parse shared
// through the cache must not put one name into another's errors.
func TestSharedText(t *testing.T) {
	text := "{{ define \"own\" }}\n{{ .Vars.nope }}{{ end }}{{ if .Slot }}{{ template \"own\" . }}{{ end }}ok"
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c"} {
		files["deploy/"+n+"/m.yaml"] = text
	}
	e := newEngine(t, files)
	for i := range 4 {
		for _, n := range []string{"a", "b", "c"} {
			file := "deploy/" + n + "/m.yaml"
			got, err := e.RenderFile(context.Background(), file, testContext())
			check(t, file, string(got), err, "ok")
			ctx := testContext()
			ctx.Slot = "1"
			_, err = e.RenderFile(context.Background(), file, ctx)
			assertError(t, err, file+`:2: at <.Vars.nope>: map has no entry for key "nope" (declare it under spec.vars or the environment's vars)`)
			_, err = e.RenderAt(context.Background(), diag.Pos{File: "services.yaml", Line: 10 * (i + 1)}, text, ctx)
			assertError(t, err, fmt.Sprintf(`services.yaml:%d: at <.Vars.nope>: map has no entry for key "nope" (declare it under spec.vars or the environment's vars)`, 10*(i+1)+1))
		}
	}
	if n := e.cache.n.Load(); n != 1 {
		t.Errorf("%d texts cached, want 1", n)
	}
}

func TestRenderFileErrors(t *testing.T) {
	e := newEngine(t, map[string]string{})
	for path, want := range map[string]string{
		"../outside.yaml": `../outside.yaml: template is outside the stack root`,
		"/etc/hostname":   `/etc/hostname: template is outside the stack root`,
		"missing.yaml":    `missing.yaml: cannot read template: no such file or directory`,
	} {
		_, err := e.RenderFile(context.Background(), path, nil)
		assertError(t, err, want)
		if path != "missing.yaml" {
			assertError(t, e.CheckFile(path), want)
		}
	}
}

func TestRenderAt(t *testing.T) {
	e := newEngine(t, map[string]string{"p.tpl": "{{ define \"x\" }}\n{{ .Nope }}{{ end }}"}, "p.tpl")
	at := diag.Pos{File: "services.yaml", Line: 40, Col: 13}
	for text, want := range map[string]string{
		`{{ .Nope }}`:                          `services.yaml:40:13: at <.Nope>: the template context has no field Nope (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service)`,
		"{{ if .Slot }}\n{{ .Nope }}{{ end }}": `services.yaml:41: at <.Nope>: the template context has no field Nope (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service)`,
		`{{ template "x" . }}`:                 `p.tpl:2: at <.Nope>: the template context has no field Nope (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service), rendering services.yaml:40:13`,
		`{{ template "y" . }}`:                 `services.yaml:40:13: no template "y"`,
	} {
		_, err := e.RenderAt(context.Background(), at, text, Context{Slot: "1"})
		assertError(t, err, want)
	}
}

func TestCheckFile(t *testing.T) {
	e := newEngine(t, map[string]string{
		"p.tpl":    `{{ define "x" }}{{ end }}`,
		"ok.yaml":  `{{ if false }}{{ .Nope }}{{ template "x" }}{{ end }}`,
		"bad.yaml": "{{ define \"x\" }}{{ end }}\n{{ if false }}{{ template \"y\" }}{{ end }}",
	}, "p.tpl")
	if err := e.CheckFile("ok.yaml"); err != nil {
		t.Errorf("ok.yaml: %v", err)
	}
	assertError(t, e.CheckFile("bad.yaml"), `bad.yaml:1: template "x" already defined in p.tpl:1
bad.yaml:2: no template "y"`)
}

// assertError checks that err is a diag.List whose text is want.
func assertError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	var l diag.List
	if !errors.As(err, &l) {
		t.Errorf("error %T is not a diag.List: %v", err, err)
	}
	if got := err.Error(); got != want {
		t.Errorf("error\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(err.Error(), reservedPrefix) && !strings.Contains(want, reservedPrefix) {
		t.Errorf("error shows an internal name: %q", err.Error())
	}
}
