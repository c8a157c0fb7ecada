package stack

import (
	"slices"
	"strconv"
	"strings"
)

// closest returns the candidate nearest to name when one is close enough to
// be a likely typo, else "". Ties go to the earlier candidate, so callers
// pass candidates in a stable order.
func closest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(strings.ToLower(name), strings.ToLower(c))
		limit := max(1, min(len(name), len(c))/3)
		if d > limit {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func quote(s string) string { return strconv.Quote(s) }

// didYouMean is the hint for an unknown name: the closest candidate, or the
// list of candidates when none is close (and the list is short).
func didYouMean(name string, candidates []string) string {
	var uniq []string
	for _, c := range candidates {
		if c != name && !slices.Contains(uniq, c) {
			uniq = append(uniq, c)
		}
	}
	candidates = uniq
	if s := closest(name, candidates); s != "" {
		return "did you mean " + quote(s) + "?"
	}
	switch {
	case len(candidates) == 0:
		return ""
	case len(candidates) <= 8:
		return "declared: " + strings.Join(candidates, ", ")
	}
	return ""
}
