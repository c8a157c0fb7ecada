package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// progress shows per-node status: on a terminal a live table redrawn in
// place, otherwise one plain line per change.
type progress struct {
	mu          sync.Mutex
	w           io.Writer
	interactive bool
	now         func() time.Time
	order       []string
	nodes       map[string]*nodeState
	width       int
	drawn       int // lines of the last table drawn
}

type nodeState struct {
	group   string
	status  apply.Status
	phase   apply.Phase
	started time.Time
	took    time.Duration
	message string
}

func newProgress(w io.Writer, p *plan.Plan, interactive bool) *progress {
	pr := &progress{w: w, interactive: interactive, now: time.Now, nodes: map[string]*nodeState{}}
	for _, s := range p.Steps {
		pr.order = append(pr.order, s.Name)
		pr.nodes[s.Name] = &nodeState{group: s.Group, status: apply.StatusWaiting}
		pr.width = max(pr.width, len(s.Name))
	}
	return pr
}

// start redraws the table every half second on a terminal so durations
// tick; the returned function stops it and draws the final state.
func (p *progress) start(ctx context.Context) (stop func()) {
	if !p.interactive {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		p.mu.Lock()
		p.draw()
		p.mu.Unlock()
	}
}

// Event records a node's change.
func (p *progress) Event(e apply.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Phase == apply.PhasePrune {
		switch {
		case !p.interactive:
			io.WriteString(p.w, p.line(e))
		case e.Status == apply.StatusPruned:
			p.above(p.w, p.line(e))
		}
		return
	}
	n := p.nodes[e.Node]
	if n == nil {
		return
	}
	switch e.Status {
	case apply.StatusStarted:
		if e.Phase == apply.PhaseApply {
			n.started = e.Time
		}
	case apply.StatusReady, apply.StatusFailed:
		n.took = e.Duration
	}
	n.status, n.phase, n.message = e.Status, e.Phase, e.Message
	if p.interactive {
		p.draw()
		return
	}
	if e.Status != apply.StatusWaiting {
		io.WriteString(p.w, p.line(e))
	}
}

// line formats one plain progress line.
func (p *progress) line(e apply.Event) string {
	status := string(e.Status)
	if e.Status == apply.StatusStarted {
		status = map[apply.Phase]string{apply.PhaseApply: "applying", apply.PhaseWait: "waiting for readiness"}[e.Phase]
	}
	msg := ""
	switch {
	case e.Status == apply.StatusReady || e.Status == apply.StatusFailed:
		msg = fmt.Sprintf(" (%s)", e.Duration.Round(10*time.Millisecond))
	case e.Status == apply.StatusPruned:
		msg = ": " + strings.Join(e.Objects, ", ")
	}
	if e.Status == apply.StatusSkipped && e.Message != "" {
		msg = ": " + e.Message
	}
	if e.Status == apply.StatusFailed && e.Phase == apply.PhasePrune {
		status, msg = "prune failed", ": "+e.Message
	}
	node := e.Node
	if node == "" {
		node = "-"
	}
	return fmt.Sprintf("%-*s  %s%s\n", p.width, node, status, msg)
}

// above writes s above the live table: the table is erased, s written to w,
// and the table drawn again below it. Anything else written to the
// terminal while the table is live would be overwritten by the next redraw.
func (p *progress) above(w io.Writer, s string) {
	live := p.drawn > 0
	if live {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
	io.WriteString(w, s)
	if live {
		p.draw()
	}
}

// Writer returns a writer whose writes go above the live table (for logs
// on the same terminal); off a terminal it is w itself.
func (p *progress) Writer(w io.Writer) io.Writer {
	if !p.interactive {
		return w
	}
	return aboveWriter{p: p, w: w}
}

type aboveWriter struct {
	p *progress
	w io.Writer
}

func (a aboveWriter) Write(b []byte) (int, error) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	a.p.above(a.w, string(b))
	return len(b), nil
}

// draw redraws the table in place.
func (p *progress) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\x1b[J", p.drawn)
	}
	now := p.now()
	for _, name := range p.order {
		n := p.nodes[name]
		var label, took string
		switch n.status {
		case apply.StatusWaiting:
			label = "waiting"
		case apply.StatusStarted:
			label = "applying"
			if n.phase == apply.PhaseWait {
				label = "waiting for readiness"
			}
			took = now.Sub(n.started).Round(time.Second).String()
		case apply.StatusReady:
			label, took = "ready", n.took.Round(10*time.Millisecond).String()
		case apply.StatusFailed:
			label, took = "failed", n.took.Round(10*time.Millisecond).String()
			if n.phase == apply.PhasePrune {
				label = "prune failed" // the node was ready; its leftovers were not deleted
			}
		case apply.StatusSkipped:
			label = "skipped"
		}
		fmt.Fprintf(&b, "  %-*s  %-10s %-22s %s\n", p.width, name, n.group, label, took)
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

// writeSummary prints failures, skips and the counts.
func writeSummary(w io.Writer, res *apply.Result, err error) {
	for _, n := range res.Failed() {
		label := "FAILED"
		if errors.Is(n.Err, context.Canceled) && !errors.Is(n.Err, apply.ErrLeaseLost) {
			label = "INTERRUPTED" // stopped by the interrupt, not by a fault of its own
		}
		fmt.Fprintf(w, "%s %s: %s\n", label, n.Name, withFlags(n.Err))
	}
	for _, n := range res.Skipped() {
		fmt.Fprintf(w, "skipped %s: %s\n", n.Name, n.Cause)
	}
	took := res.Duration.Round(10 * time.Millisecond)
	switch {
	case err != nil:
		fmt.Fprintf(w, "reconcile of %s failed after %s: %d created, %d changed, %d unchanged, %d pruned\n",
			res.Namespace, took, res.Created, res.Changed, res.Unchanged, res.Pruned)
	case res.NoChanges():
		fmt.Fprintf(w, "no changes: %d objects unchanged in %s (%s)\n", res.Unchanged, res.Namespace, took)
	default:
		fmt.Fprintf(w, "reconciled %s in %s: %d created, %d changed, %d unchanged, %d pruned\n",
			res.Namespace, took, res.Created, res.Changed, res.Unchanged, res.Pruned)
	}
}
