package render

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestSourceLine: each line of a render maps to the template line of the
// text that holds it or of the action that printed it.
func TestSourceLine(t *testing.T) {
	manifest := strings.Join([]string{
		`{{- $name := .Service.Name -}}`, // 1
		`apiVersion: v1`,                 // 2
		`kind: ConfigMap`,                // 3
		`metadata:`,                      // 4
		`  name: {{ $name }}`,            // 5
		`  labels:`,                      // 6
		`    {{- include "block" . | nindent 4 }}`, // 7: prints lines 6 to 8
		`data:`,                        // 8
		`{{- range $k, $v := .Vars }}`, // 9
		`  {{ $k }}: {{ $v | quote }}`, // 10: once per var
		`{{- end }}`,                   // 11
		`{{- if .Runtime.HotReload }}`, // 12
		`  hot: "yes"`,                 // 13
		`{{- end }}`,                   // 14
		`{{ define "own" }}x{{ end }}`, // 15: defines nothing printed
		`tail: {{ template "own" }}`,   // 16
	}, "\n") + "\n"
	e := newEngine(t, map[string]string{
		"p/block.tpl": "{{ define \"block\" }}a: {{ .Service.Name }}\nb: x\nc: y{{ end }}",
		"m.yaml":      manifest,
	}, "p/*.tpl")
	out, err := e.RenderFile(context.Background(), "m.yaml", testContext())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := map[string]int{
		"apiVersion: v1":                    2,
		"kind: ConfigMap":                   3,
		"metadata:":                         4,
		"  name: api-gateway":               5,
		"  labels:":                         6,
		"    a: api-gateway":                7,
		"    b: x":                          7,
		"    c: y":                          7,
		"data:":                             8,
		`  log-level: "debug"`:              10,
		`  registry: "registry.local:5000"`: 10,
		`  hot: "yes"`:                      13,
		"":                                  15, // the line the define stood on
		"tail: x":                           16,
	}
	if len(lines) != len(want) {
		t.Fatalf("rendered %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		got, ok := e.SourceLine(context.Background(), "m.yaml", testContext(), i+1)
		if !ok || got != want[l] {
			t.Errorf("output line %d %q: source line %d (ok %v), want %d", i+1, l, got, ok, want[l])
		}
	}
	for _, bad := range []int{0, -1, len(lines) + 5} {
		if line, ok := e.SourceLine(context.Background(), "m.yaml", testContext(), bad); ok {
			t.Errorf("output line %d: source line %d, want none", bad, line)
		}
	}
	if _, ok := e.SourceLine(context.Background(), "missing.yaml", testContext(), 1); ok {
		t.Error("a missing template has a source line")
	}
	// The traced render is not left behind: the next render is the same.
	again, err := e.RenderFile(context.Background(), "m.yaml", testContext())
	if err != nil || string(again) != string(out) {
		t.Errorf("render after SourceLine differs: %v\n%s", err, again)
	}
}

// TestSourceLineInOwnDefines: the lines a file's own block or define prints
// map to the lines of its body, not to the action that called it.
func TestSourceLineInOwnDefines(t *testing.T) {
	manifest := strings.Join([]string{
		`data:`,                    // 1
		`{{- block "pairs" . }}`,   // 2
		`  b1: 1`,                  // 3
		`  b2: 2`,                  // 4
		`{{- end }}`,               // 5
		`{{- template "more" . }}`, // 6
		`{{ define "more" }}`,      // 7
		`  m1: {{ .Env }}`,         // 8
		`{{- end }}`,               // 9
	}, "\n") + "\n"
	e := newEngine(t, map[string]string{"m.yaml": manifest})
	out, err := e.RenderFile(context.Background(), "m.yaml", testContext())
	if err != nil {
		t.Fatal(err)
	}
	lines, ok := e.SourceMap(context.Background(), "m.yaml", testContext())
	want := []int{1, 3, 4, 8, 9} // the last: the blank line the define leaves
	if !ok || len(lines) != len(want) {
		t.Fatalf("source map %v (ok %v) of:\n%s", lines, ok, out)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("output line %d %q: source line %d, want %d", i+1, strings.Split(string(out), "\n")[i], lines[i], w)
		}
	}
}

// TestSourceMapLeavesIncludedValuesAlone: a define whose output include
// returns as a value (quoted, tested) is not traced, so the map stays right.
func TestSourceMapLeavesIncludedValuesAlone(t *testing.T) {
	for text, want := range map[string][]int{
		"{{ define \"v\" }}x{{ end }}a: {{ include \"v\" . | quote }}\n":                                                              {1},
		"{{ define \"flag\" }}{{ if false }}x{{ end }}{{ end }}\n{{- if include \"flag\" . }}\nk: 1\n{{- else }}\nk: 2\n{{- end }}\n": {4, 5},
	} {
		e := newEngine(t, map[string]string{"m.yaml": text})
		lines, ok := e.SourceMap(context.Background(), "m.yaml", testContext())
		if !ok || !slices.Equal(lines, want) {
			out, _ := e.RenderFile(context.Background(), "m.yaml", testContext())
			t.Errorf("%q: source map %v (ok %v), want %v; output %q", text, lines, ok, want, out)
		}
	}
}
