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
	real := len(vs)
	g := newGraph(vs)
	vs, pending, dependents, barrierOf := g.vs, g.pending, g.dependents, g.barrierOf

	results := make(map[string]Result, real)
	type done struct {
		i   int
		err error
	}
	finished := make(chan done)
	var ready []int // startable, in declared order
	for i := range vs[:real] {
		if pending[i] == 0 {
			ready = append(ready, i)
		} else if hooks.Waiting != nil {
			on := vs[i].After
			if b, ok := barrierOf[vs[i].Stage]; ok {
				on = append(slices.Clip(on), vs[b].Name)
			}
			hooks.Waiting(vs[i].Name, on)
		}
	}
	// blockedBy collects, per node, the predecessors that did not become
	// ready, so a skip names its cause.
	blockedBy := make([][]string, len(vs))
	var skip func(i int, cause string)
	skipped := make([]bool, len(vs))
	skip = func(i int, cause string) {
		if skipped[i] {
			return
		}
		skipped[i] = true
		if i < real {
			results[vs[i].Name] = Result{Outcome: Skipped, Cause: cause}
			if hooks.Skipped != nil {
				hooks.Skipped(vs[i].Name, cause)
			}
		}
		for _, d := range dependents[i] {
			blockedBy[d] = append(blockedBy[d], vs[i].Name)
			pending[d]--
			if pending[d] == 0 {
				skip(d, "after "+strings.Join(blockedBy[d], ", ")+" did not become ready")
			}
		}
	}

	var wg sync.WaitGroup
	running := 0
	for {
		var d done
		if n := len(ready); n > 0 && ready[n-1] >= real {
			// A barrier whose stage is ready passes at once (barriers sort
			// after every node).
			d = done{i: ready[n-1]}
			ready = ready[:n-1]
		} else {
			for running < parallel && len(ready) > 0 && ctx.Err() == nil {
				i := ready[0]
				ready = ready[1:]
				running++
				wg.Add(1)
				go func() {
					defer wg.Done()
					finished <- done{i: i, err: run(ctx, vs[i].Name)}
				}()
			}
			if running == 0 {
				break
			}
			d = <-finished
			running--
			if d.err != nil {
				results[vs[d.i].Name] = Result{Outcome: Failed, Err: d.err}
			} else {
				results[vs[d.i].Name] = Result{Outcome: Ready}
			}
		}
		for _, j := range dependents[d.i] {
			if d.err != nil {
				blockedBy[j] = append(blockedBy[j], vs[d.i].Name)
			}
			pending[j]--
			if pending[j] > 0 {
				continue
			}
			if len(blockedBy[j]) > 0 {
				if ctx.Err() != nil {
					continue // interrupted, not blocked: the final pass says so
				}
				skip(j, "after "+strings.Join(blockedBy[j], ", ")+" did not become ready")
				continue
			}
			ready = append(ready, j)
		}
		sort.Ints(ready) // keep declared order among the startable
	}
	wg.Wait()
	// Interrupted: whatever did not start is skipped.
	for i := range vs[:real] {
		if _, ok := results[vs[i].Name]; !ok {
			cause := "not started"
			if err := ctx.Err(); err != nil {
				cause = fmt.Sprintf("not started: %v", err)
			}
			results[vs[i].Name] = Result{Outcome: Skipped, Cause: cause}
			if hooks.Skipped != nil {
				hooks.Skipped(vs[i].Name, cause)
			}
		}
	}
	return results
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
