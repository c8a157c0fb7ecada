package render

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"text/template/parse"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// slow matches inputs that may legitimately run for long (large loops, key
// generation): the fuzzer skips them, since a template cannot be stopped.
// fuzzLimits keep every render of the fuzz short: loops, repeats and
// doublings meet the budget within milliseconds.
var fuzzLimits = Limits{Steps: 20000, Output: 64 << 10, Value: 64 << 10, Alloc: 1 << 20, RunSteps: 20000, RunOutput: 64 << 10, ErrorText: 4 << 10}

// FuzzRender renders arbitrary template text against an arbitrary partial:
// it must never panic, and every error must be a diagnostic placed in a file
// of the stack (never an internal name).
func FuzzRender(f *testing.F) {
	for _, s := range [][2]string{
		{`{{ include "app.labels" . | nindent 2 }}`, helpers},
		{`{{ define "body" }}B{{ end }}{{ template "frame" . }}`, `{{ define "frame" }}[{{ template "body" . }}]{{ end }}`},
		{`{{ tpl "{{ .Env }}{{ define \"x\" }}{{ end }}" . }}`, `{{ define "x" }}{{ .Vars.nope }}{{ end }}`},
		{`{{ .Service.Nope }}{{ required "r" "" }}{{ fail "f" }}`, `{{/* c */}}{{- block "b" . -}}{{ end }}`},
		{`{{ include (print "a" "b") . }}{{ toYaml .Runtime }}{{ fromYaml "a: [" }}`, `{{ define "ab" }}{{ include "ab" . }}{{ end }}`},
		{"{{ define \"x\" }}\n{{ end }}{{ define \"x\" }}{{ end }}", `{{ define "x" }}{{ env "HOME" }}{{ end }}`},
		{"{{ define \"a\\x00b\" }}{{ end }}{{ template \"\\x00main\" }}", `{{ define "a" }}{{ end }}{{ define "b" }}{{ end }}`},
		{`{{ range $i := 300000000 }}{{ end }}{{ $s := "ab" }}{{ range until 64 }}{{ $s = printf "%s%s" $s $s }}{{ end }}`, `{{ define "f" }}{{ include "f" . }}{{ include "f" . }}{{ end }}`},
		{`{{ repeat (int (mul 1000 1000)) "x" }}{{ $d := dict }}{{ $_ := set $d "d" $d }}{{ $d }}`, `{{ define "t" }}{{ template "t" . }}{{ end }}`},
		{`{{ with .Vars }}{{ index . "log-level" }}{{ end }}{{ $x := 1 }}{{ $x }}`, `{{ define "` + "`raw}}`" + `" }}{{ end }}`},
	} {
		f.Add(s[0], s[1])
	}
	root := f.TempDir()
	partial := filepath.Join(root, "p.tpl")
	f.Fuzz(func(t *testing.T, text, p string) {
		if err := os.WriteFile(partial, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := New(root, []string{"p.tpl"}, WithLimits(fuzzLimits))
		if err != nil {
			checkDiagnostics(t, err, "p.tpl")
			return
		}
		if _, err := e.RenderString(context.Background(), "m.yaml", text, testContext()); err != nil {
			checkDiagnostics(t, err, "m.yaml", "p.tpl")
		}
		if _, err := e.RenderAt(context.Background(), diag.Pos{File: "services.yaml", Line: 3}, text, Context{}); err != nil {
			checkDiagnostics(t, err, "services.yaml", "p.tpl")
		}
	})
}

func checkDiagnostics(t *testing.T, err error, files ...string) {
	t.Helper()
	var l diag.List
	if !errors.As(err, &l) || len(l) == 0 {
		t.Fatalf("error %T is not a diag.List: %v", err, err)
	}
	for _, d := range l {
		if d.Msg == "" || !slices.Contains(files, d.Pos.File) {
			t.Errorf("diagnostic %q placed in %q, not one of %q", d.Error(), d.Pos.File, files)
		}
	}
}

// FuzzScanDefines checks the define scanner against Go's parser: for any text
// that parses, it finds every template the text defines.
func FuzzScanDefines(f *testing.F) {
	for _, s := range []string{
		helpers,
		"{{- /* {{ define \"no\" }} */ -}}{{ define \"a\" }}{{ \"}}\" }}{{ end }}{{block `b` .}}{{end}}",
		"{{ print '}' }}{{define \"c\\\"d\"}}{{end}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		trees, err := parse.Parse("t", text, "", "", sharedFuncs(), builtinNames)
		if err != nil {
			return
		}
		found := map[string]bool{}
		for _, s := range scanDefines(text) {
			found[s.name] = true
		}
		for name := range trees {
			if name != "t" && !found[name] {
				t.Errorf("scanDefines missed %q", name)
			}
		}
	})
}
