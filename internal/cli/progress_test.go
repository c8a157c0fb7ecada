package cli

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// screen replays what the live table writes (whole lines, and "cursor up N
// lines, clear to the end") and returns the lines left on the terminal.
func screen(out string) []string {
	erase := regexp.MustCompile(`\x1b\[(\d+)A\x1b\[J`)
	var lines []string
	add := func(text string) {
		for l := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
			if text != "" {
				lines = append(lines, l)
			}
		}
	}
	at := 0
	for _, m := range erase.FindAllStringSubmatchIndex(out, -1) {
		add(out[at:m[0]])
		n, _ := strconv.Atoi(out[m[2]:m[3]])
		lines = lines[:max(0, len(lines)-n)]
		at = m[1]
	}
	add(out[at:])
	return lines
}

// TestProgressLinesAboveTheLiveTable: a pruned line and a log line written
// while the table is live stay on the terminal, above one copy of the table.
func TestProgressLinesAboveTheLiveTable(t *testing.T) {
	p := &plan.Plan{Nodes: []*plan.Node{{Name: "db", Group: "stateful"}, {Name: "api", Group: "internal"}}}
	var out bytes.Buffer
	prog := newProgress(&out, p, true)
	prog.now = func() time.Time { return time.Unix(0, 0) }
	for _, n := range []string{"db", "api"} {
		prog.Event(apply.Event{Node: n, Phase: apply.PhaseApply, Status: apply.StatusStarted})
		prog.Event(apply.Event{Node: n, Phase: apply.PhaseWait, Status: apply.StatusReady})
	}
	prog.Writer(&out).Write([]byte("level=WARN msg=\"a log line\"\n"))
	prog.Event(apply.Event{Node: "old", Phase: apply.PhasePrune, Status: apply.StatusPruned, Objects: []string{"ConfigMap ns/old"}})
	prog.mu.Lock()
	prog.draw()
	prog.mu.Unlock()

	got := screen(out.String())
	want := []string{
		`level=WARN msg="a log line"`,
		"old  pruned: ConfigMap ns/old",
		"  db   stateful   ready                  0s",
		"  api  internal   ready                  0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("terminal shows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
