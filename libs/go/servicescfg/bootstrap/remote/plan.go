package remote

import (
	"fmt"
	"strings"
)

// decision says whether a step runs, and why not when it does not.
type decision struct {
	run    bool
	reason string
}

// Selection picks the steps that run. Without From and Only, steps run from
// the first one that is not finished with the same hash (never ran, failed,
// or changed) to the end: later steps build on it.
type Selection struct {
	// From runs this step and every later one, finished or not.
	From string
	// Only runs these steps alone, finished or not.
	Only []string
}

// decide applies the selection to the steps, given their hashes and the
// markers found on the server (step -> hash).
func decide(names, hashes []string, markers map[string]string, sel Selection) ([]decision, error) {
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	unknown := func(n string) error {
		return fmt.Errorf("no bootstrap step %q; the steps are: %s", n, strings.Join(names, ", "))
	}
	out := make([]decision, len(names))
	switch {
	case sel.From != "" && len(sel.Only) > 0:
		return nil, fmt.Errorf("choose either from or only, not both")
	case len(sel.Only) > 0:
		only := map[string]bool{}
		for _, n := range sel.Only {
			if _, ok := index[n]; !ok {
				return nil, unknown(n)
			}
			only[n] = true
		}
		for i, n := range names {
			out[i] = decision{run: only[n], reason: "not selected (only " + strings.Join(sel.Only, ", ") + ")"}
		}
	case sel.From != "":
		from, ok := index[sel.From]
		if !ok {
			return nil, unknown(sel.From)
		}
		for i := range names {
			out[i] = decision{run: i >= from, reason: "before " + sel.From + " (from)"}
		}
	default:
		first := len(names)
		for i, n := range names {
			if markers[n] != hashes[i] {
				first = i
				break
			}
		}
		for i := range names {
			out[i] = decision{run: i >= first, reason: "finished, unchanged"}
		}
	}
	for i := range out {
		if out[i].run {
			out[i].reason = ""
		}
	}
	return out, nil
}
