package render

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// TestHostileTemplates renders each hostile template of testdata/hostile
// (issue 9: loops over billions, values doubled in a loop, exponential
// include fan-out, output floods, random values) and wants a positioned
// error, not hours of work or the process out of memory.
func TestHostileTemplates(t *testing.T) {
	root, err := filepath.Abs("testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	const budget = "(a template must not loop, recurse or grow values without bound; see docs/architecture.md, render budget)"
	tests := []struct {
		file string
		line int
		msg  string
	}{
		{"range-until-billion.yaml.tpl", 2, "until would return more than 16777216 bytes"},
		{"range-int-constant.yaml.tpl", 2, "range over 300000000: more than the 1048576 steps a render may take"},
		{"range-int-computed.yaml.tpl", 3, "render budget exceeded: more than 1048576 steps"},
		{"range-nested.yaml.tpl", 2, "render budget exceeded: more than 1048576 steps"},
		{"repeat-billions.yaml.tpl", 2, "repeat would return more than 16777216 bytes"},
		{"repeat-computed.yaml.tpl", 3, "repeat would return more than 16777216 bytes"},
		{"double-printf.yaml.tpl", 4, "printf returns more than 16777216 bytes"},
		{"double-cat.yaml.tpl", 4, "cat returns more than 16777216 bytes"},
		{"double-js.yaml.tpl", 4, "js returns more than 16777216 bytes"},
		{"double-list.yaml.tpl", 4, "list returns more than 16777216 bytes"},
		{"double-dict.yaml.tpl", 4, "dict returns more than 16777216 bytes"},
		{"self-dict.yaml.tpl", 3, "set returns more than 16777216 bytes"},
		{"output-flood.yaml.tpl", 3, "output exceeds 16777216 bytes"},
		{"replace-empty.yaml.tpl", 2, "replace would return more than 16777216 bytes"},
		{"regex-empty.yaml.tpl", 2, "regexReplaceAll would return more than 16777216 bytes"},
		{"join-wide.yaml.tpl", 2, "join would return more than 16777216 bytes"},
		{"uniq-quadratic.yaml.tpl", 2, "render budget exceeded: more than 1048576 steps"},
		{"include-recursive-big.yaml.tpl", 1, "render budget exceeded: functions returned more than 268435456 bytes in all"},
		{"include-fanout.yaml.tpl", 0, "render budget exceeded: more than 1048576 steps"},
		{"template-fanout.yaml.tpl", 0, "render budget exceeded: more than 1048576 steps"},
		{"tpl-fanout.yaml.tpl", 3, "tpl text line 1: tpl: more than 1000 nested include and tpl calls"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			out, err := e.RenderFile(t.Context(), tt.file, testContext())
			var list diag.List
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one diagnostic, got %v (output %d bytes)", err, len(out))
			}
			d := list[0]
			if d.Pos.File != tt.file || d.Pos.Line < 1 || tt.line > 0 && d.Pos.Line != tt.line {
				t.Errorf("position %s, want %s:%d", d.Pos, tt.file, tt.line)
			}
			if !strings.Contains(d.Error(), tt.msg) || !strings.Contains(d.Error(), budget) && !strings.Contains(tt.msg, "nested") {
				t.Errorf("got %q, want %q and the hint", d.Error(), tt.msg)
			}
		})
	}
	seen["fail-huge.yaml.tpl"], seen["nondeterministic.yaml.tpl"] = true, true
	t.Run("fail-huge.yaml.tpl", func(t *testing.T) {
		_, err := e.RenderFile(t.Context(), "fail-huge.yaml.tpl", testContext())
		if err == nil || len(err.Error()) > DefaultLimits.ErrorText+200 || !strings.HasSuffix(err.Error(), " more bytes)") {
			t.Errorf("error of %d bytes, want it cut to %d", len(err.Error()), DefaultLimits.ErrorText)
		}
	})
	t.Run("nondeterministic.yaml.tpl", func(t *testing.T) {
		_, err := e.RenderFile(t.Context(), "nondeterministic.yaml.tpl", testContext())
		want := []string{
			`nondeterministic.yaml.tpl:3: function "randAlphaNum" is not available: its result is random, and a plan must be the same on every run (declare a generated value in spec.secrets[].generate`,
			`nondeterministic.yaml.tpl:4: function "uuidv4" is not available`,
			`nondeterministic.yaml.tpl:5: function "now" is not available: it reads the clock or the host's time zone`,
			`nondeterministic.yaml.tpl:6: function "genCA" is not available`,
			`nondeterministic.yaml.tpl:7: function "htpasswd" is not available`,
			`nondeterministic.yaml.tpl:8: function "date" is not available`,
		}
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("got %v, want %q", err, w)
			}
		}
	})
	entries, _ := os.ReadDir(root)
	for _, ent := range entries {
		if !seen[ent.Name()] {
			t.Errorf("testdata/hostile/%s has no case", ent.Name())
		}
	}
}

// TestBudgetAllowsRealTemplates: what real manifests do stays well inside
// the budget (a thousand-entry loop, nested includes, keys in order).
func TestBudgetAllowsRealTemplates(t *testing.T) {
	e := newEngine(t, map[string]string{"p/a.tpl": `{{ define "port" }}- {{ . }}{{ end }}`}, "p/*.tpl")
	got, err := e.RenderString(t.Context(), "m.yaml", `{{ range $i := until 1000 }}{{ include "port" $i }}{{ end }}|{{ keys (dict "b" 1 "a" 2 "c" 3) | join "," }}|{{ values (dict "b" 1 "a" 2) | toJson }}|{{ repeat 3 "ab" }}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "- 999|a,b,c|[2,1]|ababab") {
		t.Errorf("got ...%q", got[max(0, len(got)-40):])
	}
}

// TestBudgetLimits: a smaller budget given to New is the one enforced, per
// render and across a run.
func TestBudgetLimits(t *testing.T) {
	root := writeStack(t, map[string]string{"m.yaml": "{{ range until 100 }}x{{ end }}"})
	e, err := New(root, nil, WithLimits(Limits{Steps: 150, Output: 120, RunSteps: 250}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RenderFile(t.Context(), "m.yaml", nil); err != nil {
		t.Fatalf("within the limits: %v", err)
	}
	if _, err := e.RenderString(t.Context(), "s", "{{ range until 200 }}{{ end }}", nil); err == nil || !strings.Contains(err.Error(), "s:1: render budget exceeded: more than 150 steps") {
		t.Errorf("steps: %v", err)
	}
	if _, err := e.RenderString(t.Context(), "s", "{{ range until 130 }}x{{ end }}", nil); err == nil || !strings.Contains(err.Error(), "s:1: output exceeds 120 bytes") {
		t.Errorf("output: %v", err)
	}
	run := WithRun(t.Context())
	var errs []error
	for range 3 {
		_, err := e.RenderFile(run, "m.yaml", nil)
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil && !strings.Contains(errs[1].Error(), "steps in all the templates of this run") ||
		errs[2] == nil || !strings.Contains(errs[2].Error(), "m.yaml:1: render budget exceeded: more than 250 steps in all the templates of this run") {
		t.Errorf("run: %v", errs)
	}
}

// TestRunLimitsAcrossRenders: the run's steps and output, charged at
// checkpoints, stop a run of many small renders once they add up, each
// render within its own limits.
func TestRunLimitsAcrossRenders(t *testing.T) {
	root := writeStack(t, map[string]string{"m.yaml": strings.Repeat("x", 100) + `{{ range until 3 }}{{ end }}`})
	for _, tt := range []struct {
		lim  Limits
		want string
	}{
		{Limits{RunOutput: 1000}, "output of this run exceeds 1000 bytes in all"},
		{Limits{RunSteps: 100}, "more than 100 steps in all the templates of this run"},
	} {
		e, err := New(root, nil, WithLimits(tt.lim))
		if err != nil {
			t.Fatal(err)
		}
		run := WithRun(t.Context())
		var ok int
		for ; ok < 100; ok++ {
			if _, err = e.RenderFile(run, "m.yaml", nil); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || ok == 0 || ok > 20 {
			t.Errorf("%+v: %d renders, then %v", tt.lim, ok, err)
		}
	}
}

// TestRenderStopsWhenCancelled: an endless render (the include fan-out with
// a budget too large to stop it) ends promptly when its context is
// cancelled, with an error that wraps the context's.
func TestRenderStopsWhenCancelled(t *testing.T) {
	root, err := filepath.Abs("testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(root, nil, WithLimits(Limits{Steps: 1 << 62, RunSteps: 1 << 62}))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"include-fanout.yaml.tpl", "template-fanout.yaml.tpl", "range-nested.yaml.tpl"} {
		t.Run(file, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := e.RenderFile(ctx, file, testContext())
				done <- err
			}()
			time.Sleep(50 * time.Millisecond) // let it run, then interrupt it
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("got %v, want context.Canceled", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the render did not stop")
			}
		})
	}
}
