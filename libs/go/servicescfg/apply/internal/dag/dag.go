// Package dag walks a dependency graph in parallel: a node starts as soon
// as everything it comes after is done, and the dependents of a failure are
// skipped while independent branches finish.
package dag

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Node is one node of the graph the walker runs.
type Node struct {
	Name string
	// After are the nodes that must be ready before this one starts.
	After []string
	// Stage orders nodes in barriers: a node starts only after every
	// node of a lower stage is ready. StageName names the stage in
	// messages ("group internal"). A barrier costs one edge per node,
	// where listing every earlier node in After would cost one per pair.
	Stage     int
	StageName string
}

// Outcome is how a node ended.
type Outcome int

const (
	Ready Outcome = iota + 1
	Failed
	Skipped
)

// Result is the outcome of one node.
type Result struct {
	Outcome Outcome
	Err     error
	// cause names the failed or skipped nodes that made this one skip,
	// or says the run was interrupted.
	Cause string
}

// Hooks are told about nodes the walker does not run.
type Hooks struct {
	// Waiting is called once per node when it is blocked on others at
	// the start of the walk.
	Waiting func(name string, on []string)
	// Skipped is called for a node that will not run.
	Skipped func(name, cause string)
}

// Walk runs the nodes of an acyclic graph: a node starts as soon as
// every node in its after list is ready, at most parallel at a time, in
// the order given among those ready to start. A node whose predecessors
// failed or were skipped is skipped; independent branches go on. When ctx
// is done nothing new starts and the nodes not started are skipped.
// Walk returns when every started node has returned.
func Walk(ctx context.Context, vs []Node, parallel int, run func(ctx context.Context, name string) error, hooks Hooks) map[string]Result {
	if parallel <= 0 {
		parallel = 1
	}
	w := newWalk(vs, hooks)
	w.loop(ctx, parallel, run)
	w.skipUnstarted(ctx)
	return w.results
}

// walk is the state of one Walk.
type walk struct {
	*graph
	real    int // the given nodes; barriers come after them in vs
	hooks   Hooks
	results map[string]Result
	ready   []int // startable, in declared order
	// blockedBy collects, per node, the predecessors that did not become
	// ready, so a skip names its cause.
	blockedBy [][]string
	skipped   []bool
}

// finished is a node (or barrier) that has returned.
type finished struct {
	i   int
	err error
}

// newWalk builds the graph and finds the nodes startable at once, telling
// hooks about the ones that wait.
func newWalk(vs []Node, hooks Hooks) *walk {
	g := newGraph(vs)
	w := &walk{graph: g, real: len(vs), hooks: hooks, results: make(map[string]Result, len(vs)),
		blockedBy: make([][]string, len(g.vs)), skipped: make([]bool, len(g.vs))}
	for i := range g.vs[:w.real] {
		if g.pending[i] == 0 {
			w.ready = append(w.ready, i)
		} else if hooks.Waiting != nil {
			on := g.vs[i].After
			if b, ok := g.barrierOf[g.vs[i].Stage]; ok {
				on = append(slices.Clip(on), g.vs[b].Name)
			}
			hooks.Waiting(g.vs[i].Name, on)
		}
	}
	return w
}

// loop starts nodes as they become startable and collects them as they
// finish, until nothing runs and nothing more can start.
func (w *walk) loop(ctx context.Context, parallel int, run func(ctx context.Context, name string) error) {
	done := make(chan finished)
	var wg sync.WaitGroup
	defer wg.Wait()
	running := 0
	for {
		var d finished
		if n := len(w.ready); n > 0 && w.ready[n-1] >= w.real {
			// A barrier whose stage is ready passes at once (barriers sort
			// after every node).
			d = finished{i: w.ready[n-1]}
			w.ready = w.ready[:n-1]
		} else {
			for running < parallel && len(w.ready) > 0 && ctx.Err() == nil {
				i := w.ready[0]
				w.ready = w.ready[1:]
				running++
				wg.Go(func() { done <- finished{i: i, err: run(ctx, w.vs[i].Name)} })
			}
			if running == 0 {
				return
			}
			d = <-done
			running--
			w.record(d)
		}
		w.release(ctx, d)
	}
}

// record notes how a node ended.
func (w *walk) record(d finished) {
	if d.err != nil {
		w.results[w.vs[d.i].Name] = Result{Outcome: Failed, Err: d.err}
	} else {
		w.results[w.vs[d.i].Name] = Result{Outcome: Ready}
	}
}

// release tells a finished node's dependents: those with nothing left to
// wait for become startable, or are skipped when one of their
// predecessors failed.
func (w *walk) release(ctx context.Context, d finished) {
	for _, j := range w.dependents[d.i] {
		if d.err != nil {
			w.blockedBy[j] = append(w.blockedBy[j], w.vs[d.i].Name)
		}
		w.pending[j]--
		if w.pending[j] > 0 {
			continue
		}
		if len(w.blockedBy[j]) > 0 {
			if ctx.Err() != nil {
				continue // interrupted, not blocked: skipUnstarted says so
			}
			w.skip(j, "after "+strings.Join(w.blockedBy[j], ", ")+" did not become ready")
			continue
		}
		w.ready = append(w.ready, j)
	}
	sort.Ints(w.ready) // keep declared order among the startable
}

// skip marks a node skipped, and with it every node that waits for it.
func (w *walk) skip(i int, cause string) {
	if w.skipped[i] {
		return
	}
	w.skipped[i] = true
	if i < w.real {
		w.results[w.vs[i].Name] = Result{Outcome: Skipped, Cause: cause}
		if w.hooks.Skipped != nil {
			w.hooks.Skipped(w.vs[i].Name, cause)
		}
	}
	for _, d := range w.dependents[i] {
		w.blockedBy[d] = append(w.blockedBy[d], w.vs[i].Name)
		w.pending[d]--
		if w.pending[d] == 0 {
			w.skip(d, "after "+strings.Join(w.blockedBy[d], ", ")+" did not become ready")
		}
	}
}

// skipUnstarted skips, once the walk is over, whatever did not start (an
// interrupted walk).
func (w *walk) skipUnstarted(ctx context.Context) {
	for i := range w.vs[:w.real] {
		if _, ok := w.results[w.vs[i].Name]; !ok {
			cause := "not started"
			if err := ctx.Err(); err != nil {
				cause = fmt.Sprintf("not started: %v", err)
			}
			w.results[w.vs[i].Name] = Result{Outcome: Skipped, Cause: cause}
			if w.hooks.Skipped != nil {
				w.hooks.Skipped(w.vs[i].Name, cause)
			}
		}
	}
}

// withBarriers appends a barrier node between each two consecutive
// stages. barrierOf maps a stage to the barrier its nodes wait for,
// barrierAfter to the barrier that waits for its nodes.
func withBarriers(vs []Node) (out []Node, barrierOf, barrierAfter map[int]int) {
	names := map[int]string{}
	for _, v := range vs {
		if _, ok := names[v.Stage]; !ok || names[v.Stage] == "" {
			names[v.Stage] = v.StageName
		}
	}
	stages := slices.Sorted(maps.Keys(names))
	out = slices.Clip(vs)
	barrierOf, barrierAfter = map[int]int{}, map[int]int{}
	for k := 1; k < len(stages); k++ {
		prev := stages[k-1]
		name := names[prev]
		if name == "" {
			name = fmt.Sprintf("stage %d", prev)
		}
		out = append(out, Node{Name: name, Stage: prev})
		barrierOf[stages[k]] = len(out) - 1
		barrierAfter[prev] = len(out) - 1
	}
	return out, barrierOf, barrierAfter
}

// graph is a walk's nodes, with a barrier node appended between each
// two stages, and its edges.
type graph struct {
	vs []Node
	// pending counts each node's predecessors; dependents inverts them.
	pending    []int
	dependents [][]int
	// barrierOf maps a stage to the barrier its nodes wait for.
	barrierOf map[int]int
}

func newGraph(in []Node) *graph {
	index := map[string]int{}
	for i, v := range in {
		index[v.Name] = i
	}
	vs, barrierOf, barrierAfter := withBarriers(in)
	g := &graph{vs: vs, pending: make([]int, len(vs)), dependents: make([][]int, len(vs)), barrierOf: barrierOf}
	edge := func(from, to int) {
		g.pending[to]++
		g.dependents[from] = append(g.dependents[from], to)
	}
	for i, v := range in {
		for _, a := range v.After {
			if j, ok := index[a]; ok { // others are not part of this walk
				edge(j, i)
			}
		}
		if b, ok := barrierOf[v.Stage]; ok {
			edge(b, i) // the barrier of the stage before this one
		}
		if b, ok := barrierAfter[v.Stage]; ok {
			edge(i, b) // the barrier after this node's stage
		}
	}
	return g
}
