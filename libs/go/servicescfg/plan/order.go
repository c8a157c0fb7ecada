package plan

import (
	"maps"
	"slices"
	"sort"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// order computes levels and sorts the nodes into apply order: by level, then
// group order, then declared order.
func order(s *stack.Stack, p *Plan) diag.List {
	var errs diag.List
	byName := map[string]*Node{}
	declared := map[string]int{}
	for i, st := range p.Nodes {
		byName[st.Name] = st
		declared[st.Name] = i
	}
	groupIdx := func(g string) int { return s.GroupIndex(g) }

	// Drop edges to nodes absent from this environment, but refuse to drop
	// an edge silently: a dependency left out is an error.
	skipped := map[string]string{}
	for _, sk := range p.Skipped {
		skipped[sk.Name] = sk.Reason
	}
	for _, st := range p.Nodes {
		for _, d := range st.DependsOn {
			if reason, ok := skipped[d]; ok {
				errs.AddHint(nodePos(s, st.Name, "dependsOn"),
					"enable the dependency in this environment or disable the dependent too",
					"node %s depends on %s, which is left out of environment %s (%s)", st.Name, d, p.Environment, reason)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}

	// Group barriers: every node of a group comes after every node of the
	// non-empty groups before it.
	groups := map[int][]*Node{}
	for _, st := range p.Nodes {
		groups[groupIdx(st.Group)] = append(groups[groupIdx(st.Group)], st)
	}
	gidx := slices.Sorted(maps.Keys(groups))
	base := 0
	for stage, g := range gidx {
		members := groups[g]
		// Within a group, levels follow the dependencies (the loader has
		// rejected cycles and forward-group edges).
		level := map[string]int{}
		var visit func(st *Node, depth int) int
		visit = func(st *Node, depth int) int {
			if l, ok := level[st.Name]; ok {
				return l
			}
			if depth > len(members) {
				return base // a cycle; reported by the loader
			}
			l := base
			for _, d := range st.DependsOn {
				dep := byName[d]
				if dep == nil || groupIdx(dep.Group) != g {
					continue
				}
				l = max(l, visit(dep, depth+1)+1)
			}
			level[st.Name] = l
			return l
		}
		top := base
		for _, st := range members {
			st.Level = visit(st, 0)
			top = max(top, st.Level)
			st.After = slices.Compact(slices.Sorted(slices.Values(st.DependsOn)))
			st.Stage = stage
		}
		base = top + 1
	}
	sort.SliceStable(p.Nodes, func(i, j int) bool {
		a, b := p.Nodes[i], p.Nodes[j]
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		if ga, gb := groupIdx(a.Group), groupIdx(b.Group); ga != gb {
			return ga < gb
		}
		return declared[a.Name] < declared[b.Name]
	})
	return errs
}
