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
		limit := max(1, min(len(name), len(c))/3)
		if len(name) > 128 || len(c) > 128 || abs(len(name)-len(c)) > limit {
			continue
		}
		if d := distance(strings.ToLower(name), strings.ToLower(c)); d > limit {
			continue
		} else if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the optimal string alignment distance between a and b, in
// bytes: Levenshtein with transpositions ("dve" is one step from "dev").
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
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

func abs(n int) int { return max(n, -n) }
