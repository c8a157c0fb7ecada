// Package dag walks a dependency graph in parallel: a vertex starts as soon
// as everything it comes after is done, and the dependents of a failure are
// skipped while independent branches finish.
package dag

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Vertex is one node of the graph the walker runs.
type Vertex struct {
	Name string
	// After are the vertices that must be ready before this one starts.
	After []string
}

// Outcome is how a vertex ended.
type Outcome int

const (
	Ready Outcome = iota + 1
	Failed
	Skipped
)

// Result is the outcome of one vertex.
type Result struct {
	Outcome Outcome
	Err     error
	// cause names the failed or skipped vertices that made this one skip,
	// or says the run was interrupted.
	Cause string
}

// Hooks are told about vertices the walker does not run.
type Hooks struct {
	// Waiting is called once per vertex when it is blocked on others at
	// the start of the walk.
	Waiting func(name string, on []string)
	// Skipped is called for a vertex that will not run.
	Skipped func(name, cause string)
}

// Walk runs the vertices of an acyclic graph: a vertex starts as soon as
// every vertex in its after list is ready, at most parallel at a time, in
// the order given among those ready to start. A vertex whose predecessors
// failed or were skipped is skipped; independent branches go on. When ctx
// is done nothing new starts and the vertices not started are skipped.
// Walk returns when every started vertex has returned.
func Walk(ctx context.Context, vs []Vertex, parallel int, run func(ctx context.Context, name string) error, hooks Hooks) map[string]Result {
	if parallel <= 0 {
		parallel = 1
	}
	index := map[string]int{}
	for i, v := range vs {
		index[v.Name] = i
	}
	// pending counts unfinished predecessors; dependents inverts after.
	pending := make([]int, len(vs))
	dependents := make([][]int, len(vs))
	for i, v := range vs {
		for _, a := range v.After {
			j, ok := index[a]
			if !ok {
				continue // not part of this walk: nothing to wait for
			}
			pending[i]++
			dependents[j] = append(dependents[j], i)
		}
	}

	results := make(map[string]Result, len(vs))
	type done struct {
		i   int
		err error
	}
	finished := make(chan done)
	var ready []int // startable, in declared order
	for i := range vs {
		if pending[i] == 0 {
			ready = append(ready, i)
		} else if hooks.Waiting != nil {
			hooks.Waiting(vs[i].Name, vs[i].After)
		}
	}
	// blockedBy collects, per vertex, the predecessors that did not become
	// ready, so a skip names its cause.
	blockedBy := make([][]string, len(vs))
	var skip func(i int, cause string)
	skip = func(i int, cause string) {
		if _, ok := results[vs[i].Name]; ok {
			return
		}
		results[vs[i].Name] = Result{Outcome: Skipped, Cause: cause}
		if hooks.Skipped != nil {
			hooks.Skipped(vs[i].Name, cause)
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
		d := <-finished
		running--
		if d.err != nil {
			results[vs[d.i].Name] = Result{Outcome: Failed, Err: d.err}
		} else {
			results[vs[d.i].Name] = Result{Outcome: Ready}
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
				skip(j, "after "+strings.Join(blockedBy[j], ", ")+" did not become ready")
				continue
			}
			ready = append(ready, j)
		}
		sort.Ints(ready) // keep declared order among the startable
	}
	wg.Wait()
	// Interrupted: whatever did not start is skipped.
	for i := range vs {
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
