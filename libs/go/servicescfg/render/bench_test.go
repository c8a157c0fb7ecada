package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchStack is a stack with n partials (in files of ten) and a Deployment
// manifest that calls a few of them, the shape of the render benchmark's.
func benchStack(b *testing.B, n int) *Engine {
	files := map[string]string{}
	for f := 0; f*10 < n; f++ {
		var s strings.Builder
		for i := f * 10; i < min(n, f*10+10); i++ {
			fmt.Fprintf(&s, "{{- define \"p%d\" -}}\napp.kubernetes.io/name: {{ .Service.Name }}\nhelper: \"%d\"\n{{- end }}\n", i, i)
		}
		files[fmt.Sprintf("deploy/partials/_%02d.tpl", f)] = s.String()
	}
	files["deploy/partials/_helpers.tpl"] = helpers
	files["m.yaml"] = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.name" . }}
  namespace: {{ .Namespace }}
  labels:
    {{- include "app.labels" . | nindent 4 }}
    {{- include "p7" . | nindent 4 }}
spec:
  replicas: {{ if eq .Env "prod" }}3{{ else }}1{{ end }}
  template:
    metadata:
      labels:
        {{- include "app.labels" . | nindent 8 }}
    spec:
      containers:
        - name: {{ .Service.Name }}
          image: {{ required "image" .Service.Image }}
          env:
          {{- range $k, $v := .Vars }}
            - name: {{ $k | upper | replace "-" "_" }}
              value: {{ $v | quote }}
          {{- end }}
          {{- if .Runtime.Workspace.Enabled }}
          volumeMounts:
            - name: workspace
              mountPath: {{ .Runtime.Workspace.MountPath }}
          {{- end }}
`
	e, err := New(writeStack(b, files), []string{"deploy/partials/*.tpl"})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkRenderFile renders one manifest against 50 partials (and 500, to
// show that a render's cost does not grow with the partials), serially and
// from parallel goroutines.
func BenchmarkRenderFile(b *testing.B) {
	for _, n := range []int{50, 500} {
		e := benchStack(b, n)
		ctx := testContext()
		b.Run(fmt.Sprintf("partials=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.RenderFile(context.Background(), "m.yaml", ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("partials=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.RenderFile(context.Background(), "m.yaml", ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRenderDistinct renders texts that differ every time, so that each
// is parsed: the cost of a stack whose manifests are all different.
func BenchmarkRenderDistinct(b *testing.B) {
	e := benchStack(b, 50)
	text, err := os.ReadFile(filepath.Join(e.root, "m.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := testContext()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.RenderString(context.Background(), "m.yaml", fmt.Sprintf("# %d\n%s", i, text), ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderString renders a `when` condition, as the planner does for
// each node.
func BenchmarkRenderString(b *testing.B) {
	e := benchStack(b, 50)
	ctx := testContext()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.RenderString(context.Background(), "when", `{{ ne .Env "prod" }}`, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew reads and parses 50 partials.
func BenchmarkNew(b *testing.B) {
	e := benchStack(b, 50)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(e.root, []string{"deploy/partials/*.tpl"}); err != nil {
			b.Fatal(err)
		}
	}
}
