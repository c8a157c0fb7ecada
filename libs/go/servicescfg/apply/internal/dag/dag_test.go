package dag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder runs nodes, logging starts and ends, failing the named ones.
type recorder struct {
	mu      sync.Mutex
	log     []string
	running int
	peak    int
	fail    map[string]bool
	// gate, when set, holds every node until it is closed.
	gate chan struct{}
}

func (r *recorder) run(ctx context.Context, name string) error {
	r.mu.Lock()
	r.log = append(r.log, "start "+name)
	r.running++
	r.peak = max(r.peak, r.running)
	r.mu.Unlock()
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	r.log = append(r.log, "end "+name)
	r.running--
	r.mu.Unlock()
	if r.fail[name] {
		return errors.New(name + " broke")
	}
	return nil
}

func (r *recorder) index(entry string) int { return slices.Index(r.log, entry) }

func TestWalkOrdersByDependencies(t *testing.T) {
	vs := []Node{
		{Name: "postgres"},
		{Name: "redis"},
		{Name: "migrate", After: []string{"postgres", "redis"}},
		{Name: "api", After: []string{"migrate", "postgres", "redis"}},
		{Name: "web", After: []string{"api", "migrate", "postgres", "redis"}},
	}
	r := &recorder{}
	res := Walk(context.Background(), vs, 4, r.run, Hooks{})
	for _, v := range vs {
		if res[v.Name].Outcome != Ready {
			t.Errorf("%s: outcome %v, want ready", v.Name, res[v.Name].Outcome)
		}
		for _, a := range v.After {
			if r.index("end "+a) > r.index("start "+v.Name) {
				t.Errorf("%s started before %s ended: %v", v.Name, a, r.log)
			}
		}
	}
}

func TestWalkRunsIndependentNodesConcurrentlyWithinBound(t *testing.T) {
	var vs []Node
	for i := range 10 {
		vs = append(vs, Node{Name: fmt.Sprintf("n%d", i)})
	}
	r := &recorder{gate: make(chan struct{})}
	done := make(chan map[string]Result)
	go func() { done <- Walk(context.Background(), vs, 3, r.run, Hooks{}) }()
	// Wait until the bound is reached, then release everything.
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		n := r.running
		r.mu.Unlock()
		if n == 3 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("never reached 3 concurrent nodes: %v", r.log)
		case <-time.After(time.Millisecond):
		}
	}
	close(r.gate)
	res := <-done
	if r.peak != 3 {
		t.Errorf("peak concurrency %d, want exactly the bound 3", r.peak)
	}
	if len(res) != 10 {
		t.Errorf("%d results, want 10", len(res))
	}
}

func TestWalkSkipsDependentsOfFailureAndFinishesIndependentBranches(t *testing.T) {
	vs := []Node{
		{Name: "postgres"},
		{Name: "migrate", After: []string{"postgres"}},
		{Name: "api", After: []string{"migrate"}},
		{Name: "web", After: []string{"api"}},
		{Name: "docs"}, // independent branch
		{Name: "docs-index", After: []string{"docs"}},
	}
	r := &recorder{fail: map[string]bool{"migrate": true}}
	var skipped []string
	var mu sync.Mutex
	res := Walk(context.Background(), vs, 2, r.run, Hooks{Skipped: func(name, cause string) {
		mu.Lock()
		defer mu.Unlock()
		skipped = append(skipped, name+": "+cause)
	}})
	want := map[string]Outcome{"postgres": Ready, "migrate": Failed, "api": Skipped, "web": Skipped, "docs": Ready, "docs-index": Ready}
	for name, o := range want {
		if res[name].Outcome != o {
			t.Errorf("%s: outcome %v, want %v", name, res[name].Outcome, o)
		}
	}
	if res["migrate"].Err == nil || !strings.Contains(res["migrate"].Err.Error(), "migrate broke") {
		t.Errorf("migrate error %v", res["migrate"].Err)
	}
	if got := res["api"].Cause; !strings.Contains(got, "migrate") {
		t.Errorf("api skip cause %q does not name migrate", got)
	}
	if got := res["web"].Cause; !strings.Contains(got, "api") {
		t.Errorf("web skip cause %q does not name api", got)
	}
	for _, n := range []string{"api", "web"} {
		if r.index("start "+n) >= 0 {
			t.Errorf("%s ran though its dependency failed", n)
		}
	}
	slices.Sort(skipped)
	if len(skipped) != 2 {
		t.Errorf("skipped hook called for %v, want api and web once each", skipped)
	}
}

func TestWalkStartsNothingNewOnceCancelled(t *testing.T) {
	vs := []Node{{Name: "a"}, {Name: "b", After: []string{"a"}}, {Name: "c", After: []string{"b"}}}
	ctx, cancel := context.WithCancel(context.Background())
	run := func(ctx context.Context, name string) error {
		if name == "a" {
			cancel()
			<-ctx.Done()
		}
		return nil
	}
	res := Walk(ctx, vs, 2, run, Hooks{})
	if res["a"].Outcome != Ready {
		t.Errorf("a: %v", res["a"])
	}
	for _, n := range []string{"b", "c"} {
		if res[n].Outcome != Skipped || !strings.Contains(res[n].Cause, "canceled") {
			t.Errorf("%s: %+v, want skipped as not started: context canceled", n, res[n])
		}
	}
}

func TestWalkReportsWaitingNodes(t *testing.T) {
	vs := []Node{{Name: "a"}, {Name: "b", After: []string{"a"}}}
	var waiting []string
	Walk(context.Background(), vs, 1, func(context.Context, string) error { return nil }, Hooks{
		Waiting: func(name string, on []string) { waiting = append(waiting, name+"<-"+strings.Join(on, ",")) },
	})
	if !slices.Equal(waiting, []string{"b<-a"}) {
		t.Errorf("waiting %v", waiting)
	}
}

func TestWalkKeepsDeclaredOrderAmongStartable(t *testing.T) {
	vs := []Node{{Name: "z"}, {Name: "y"}, {Name: "x", After: []string{"z"}}, {Name: "w"}}
	r := &recorder{}
	Walk(context.Background(), vs, 1, r.run, Hooks{})
	want := []string{"start z", "end z", "start y", "end y", "start x", "end x", "start w", "end w"}
	if !slices.Equal(r.log, want) {
		t.Errorf("order %v, want %v", r.log, want)
	}
}

// stages builds nodes of three stages: a1 a2 | b1 (after a2) b2 | c1.
func stages() []Node {
	return []Node{
		{Name: "a1", Stage: 0, StageName: "group a"},
		{Name: "a2", Stage: 0, StageName: "group a"},
		{Name: "b1", After: []string{"a2"}, Stage: 1, StageName: "group b"},
		{Name: "b2", Stage: 1, StageName: "group b"},
		{Name: "c1", Stage: 2, StageName: "group c"},
	}
}

func TestWalkHoldsStagesBehindBarriers(t *testing.T) {
	vs := stages()
	r := &recorder{}
	res := Walk(context.Background(), vs, 4, r.run, Hooks{})
	if len(res) != len(vs) {
		t.Fatalf("%d results, want %d (barriers are not results)", len(res), len(vs))
	}
	for _, v := range vs {
		if res[v.Name].Outcome != Ready {
			t.Errorf("%s: %+v", v.Name, res[v.Name])
		}
		for _, e := range vs {
			if e.Stage < v.Stage && r.index("end "+e.Name) > r.index("start "+v.Name) {
				t.Errorf("%s (stage %d) started before %s (stage %d) ended: %v", v.Name, v.Stage, e.Name, e.Stage, r.log)
			}
		}
	}
}

func TestWalkSkipsLaterStagesAfterAFailure(t *testing.T) {
	r := &recorder{fail: map[string]bool{"a1": true}}
	var skipped []string
	res := Walk(context.Background(), stages(), 2, r.run, Hooks{Skipped: func(name, cause string) {
		skipped = append(skipped, name+": "+cause)
	}})
	want := map[string]Outcome{"a1": Failed, "a2": Ready, "b1": Skipped, "b2": Skipped, "c1": Skipped}
	for name, o := range want {
		if res[name].Outcome != o {
			t.Errorf("%s: outcome %v, want %v", name, res[name].Outcome, o)
		}
	}
	if got := res["b2"].Cause; got != "after group a did not become ready" {
		t.Errorf("b2 cause %q", got)
	}
	if got := res["c1"].Cause; got != "after group b did not become ready" {
		t.Errorf("c1 cause %q", got)
	}
	slices.Sort(skipped)
	if len(skipped) != 3 {
		t.Errorf("skipped hook: %v, want b1, b2 and c1 once each", skipped)
	}
}

func TestWalkReportsWaitingOnTheBarrier(t *testing.T) {
	var waiting []string
	Walk(context.Background(), stages(), 1, func(context.Context, string) error { return nil }, Hooks{
		Waiting: func(name string, on []string) { waiting = append(waiting, name+"<-"+strings.Join(on, ",")) },
	})
	want := []string{"b1<-a2,group a", "b2<-group a", "c1<-group b"}
	if !slices.Equal(waiting, want) {
		t.Errorf("waiting %v, want %v", waiting, want)
	}
}

// TestBarriersCostAnEdgePerNode: two stages of n nodes take 2n edges
// through one barrier, not n².
func TestBarriersCostAnEdgePerNode(t *testing.T) {
	const n = 3000
	var vs []Node
	for s := range 2 {
		for i := range n {
			vs = append(vs, Node{Name: fmt.Sprintf("s%d-%d", s, i), Stage: s})
		}
	}
	g := newGraph(vs)
	edges := 0
	for _, d := range g.dependents {
		edges += len(d)
	}
	if len(g.vs) != 2*n+1 || edges != 2*n {
		t.Errorf("%d nodes and %d edges, want %d and %d", len(g.vs), edges, 2*n+1, 2*n)
	}
	var mu sync.Mutex
	started := 0
	res := Walk(context.Background(), vs, 8, func(_ context.Context, name string) error {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(name, "s1-") && started < n {
			t.Errorf("%s started after only %d of stage 0", name, started)
		}
		started++
		return nil
	}, Hooks{})
	if len(res) != 2*n {
		t.Fatalf("%d results", len(res))
	}
}

// TestWalkInterruptedNodeDoesNotBlame: a node stopped by the interrupt
// leaves its dependents "not started", not "after a did not become ready".
func TestWalkInterruptedNodeDoesNotBlame(t *testing.T) {
	vs := []Node{{Name: "a"}, {Name: "b", After: []string{"a"}}, {Name: "c", Stage: 1}}
	ctx, cancel := context.WithCancel(context.Background())
	res := Walk(ctx, vs, 2, func(ctx context.Context, name string) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}, Hooks{})
	if res["a"].Outcome != Failed {
		t.Errorf("a: %+v", res["a"])
	}
	for _, n := range []string{"b", "c"} {
		if res[n].Outcome != Skipped || res[n].Cause != "not started: context canceled" {
			t.Errorf("%s: %+v, want not started: context canceled", n, res[n])
		}
	}
}
