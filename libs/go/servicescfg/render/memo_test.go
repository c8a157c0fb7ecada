package render

import (
	"context"
	"strings"
	"testing"
)

func TestMarkPure(t *testing.T) {
	e := newEngine(t, map[string]string{"p/a.tpl": `
{{- define "labels" }}app: {{ .Service.Name }}{{ end }}
{{- define "meta" }}{{ include "labels" . | nindent 2 }}{{ template "labels" . }}{{ end }}
{{- define "usesMutates" }}{{ include "mutates" . }}{{ end }}
{{- define "dynamic" }}{{ include (printf "%s" "labels") . }}{{ end }}
{{- define "mutates" }}{{ $_ := set . "k" "v" }}{{ end }}
{{- define "late" }}{{ include "fromManifest" . }}{{ end }}
{{- define "viaTpl" }}{{ tpl "x" . }}{{ end }}
`}, "p/*.tpl")
	want := map[string]bool{"labels": true, "meta": true, "usesMutates": false,
		"dynamic": false, "mutates": false, "late": false, "viaTpl": false}
	for name, pure := range want {
		if e.pure[name] != pure {
			t.Errorf("pure[%s] = %v, want %v", name, e.pure[name], pure)
		}
	}
}

// TestMemoKeepsMeaning renders texts whose output would change if include
// remembered what it must not.
func TestMemoKeepsMeaning(t *testing.T) {
	e := newEngine(t, map[string]string{"p/a.tpl": `
{{- define "show" }}{{ .a }}{{ end }}
{{- define "count" }}{{ $_ := set . "n" (add1 .n) }}{{ .n }}{{ end }}
{{- define "name" }}{{ .Service.Name }}{{ end }}
`}, "p/*.tpl")
	tests := []struct{ name, text, want string }{
		{"set between includes", `{{ $d := dict "a" 1 }}{{ include "show" $d }},{{ $_ := set $d "a" 2 }}{{ include "show" $d }}`, "1,2"},
		{"merge between includes", `{{ $d := dict "a" 1 }}{{ include "show" $d }},{{ $_ := mergeOverwrite $d (dict "a" 3) }}{{ include "show" $d }}`, "1,3"},
		{"fresh dict per iteration", `{{ range $i := until 50 }}{{ include "show" (dict "a" $i) }}{{ end }}`, "012345678910111213141516171819202122232425262728293031323334353637383940414243444546474849"},
		{"same context twice", `{{ include "name" . }}-{{ include "name" . }}`, "api-api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 { // pooled instances must not carry a memo over
				got, err := e.RenderString(context.Background(), "m.yaml", tt.text, Context{Service: &Service{Name: "api"}})
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
	got, err := e.RenderString(context.Background(), "m.yaml", `{{ $c := dict "n" 0 }}{{ include "count" $c }} {{ include "count" $c }}`, Context{})
	if err != nil {
		t.Fatal(err)
	}
	if parts := strings.Fields(got); len(parts) != 2 || parts[0] == parts[1] {
		t.Errorf("an impure partial was remembered: %q", got)
	}
	a, _ := e.RenderString(context.Background(), "m.yaml", `{{ include "name" . }}`, Context{Service: &Service{Name: "one"}})
	b, _ := e.RenderString(context.Background(), "m.yaml", `{{ include "name" . }}`, Context{Service: &Service{Name: "two"}})
	if a != "one" || b != "two" {
		t.Errorf("memo leaked across renders: %q %q", a, b)
	}
}
