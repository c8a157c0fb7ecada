package diag

import "testing"

// TestSortMergesOneProblemReachedFromSeveralTemplates: a broken partial is
// one problem, however many templates include it.
func TestSortMergesOneProblemReachedFromSeveralTemplates(t *testing.T) {
	at := Pos{File: "p/labels.tpl", Line: 3}
	var l List
	for _, via := range []string{"m/c.yaml", "m/a.yaml", "m/b.yaml", "m/a.yaml"} {
		l = append(l, &Diagnostic{Pos: at, Msg: `at <.Vars.x>: map has no entry for key "x"`, Via: []string{via}})
	}
	l.Add(Pos{File: "m/a.yaml", Line: 1}, "another problem")
	shared := l[0]
	l.Sort()
	want := []string{
		"m/a.yaml:1: another problem",
		`p/labels.tpl:3: at <.Vars.x>: map has no entry for key "x", rendering m/a.yaml and 2 other templates`,
	}
	if len(l) != len(want) {
		t.Fatalf("%d diagnostics, want %d: %v", len(l), len(want), l)
	}
	for i, w := range want {
		if got := l[i].Error(); got != w {
			t.Errorf("%d: %s\nwant %s", i, got, w)
		}
	}
	if len(shared.Via) != 1 {
		t.Errorf("Sort changed a diagnostic it was given: %v", shared.Via)
	}
	two := &Diagnostic{Pos: at, Msg: "m", Hint: "h", Via: []string{"a", "b"}}
	if got := two.Error(); got != "p/labels.tpl:3: m, rendering a and b (h)" {
		t.Errorf("two: %s", got)
	}
}
