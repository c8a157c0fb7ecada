// Package diag holds positioned diagnostics: problems found in a stack's files,
// each naming the file, line and column of the offending value.
//
// Loaders and renderers accumulate diagnostics instead of stopping at the first
// problem, so that one run of `validate` shows everything that is wrong.
package diag

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Pos is a position in a file. Line and Col are 1-based; zero means unknown.
// File is relative to the stack root when the file lives under it.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as FILE:LINE:COL, dropping unknown parts.
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	return b.String()
}

// IsValid reports whether the position names at least a file.
func (p Pos) IsValid() bool { return p.File != "" }

// Diagnostic is one problem at one position.
type Diagnostic struct {
	Pos Pos
	Msg string
	// Hint tells the user what to do about it; optional.
	Hint string
	// Via names the templates whose rendering reached the problem when it
	// lies in another file, a partial they include. Sort lists a problem
	// reached from several templates once, with all of them.
	Via []string
}

// Error formats the diagnostic as FILE:LINE:COL: MESSAGE, on one line:
// characters that could drive a terminal are escaped (see Escape).
func (d *Diagnostic) Error() string {
	msg := d.Msg
	switch n := len(d.Via); {
	case n == 1:
		msg += ", rendering " + d.Via[0]
	case n == 2:
		msg += ", rendering " + d.Via[0] + " and " + d.Via[1]
	case n > 2:
		msg += fmt.Sprintf(", rendering %s and %d other templates", d.Via[0], n-1)
	}
	if d.Hint != "" {
		msg += " (" + d.Hint + ")"
	}
	if !d.Pos.IsValid() {
		return Escape(msg)
	}
	return Escape(d.Pos.String() + ": " + msg)
}

// List accumulates diagnostics. The zero value is ready to use.
type List []*Diagnostic

// Add appends a diagnostic.
func (l *List) Add(pos Pos, format string, args ...any) {
	*l = append(*l, &Diagnostic{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// AddHint appends a diagnostic with a hint on what to do.
func (l *List) AddHint(pos Pos, hint, format string, args ...any) {
	*l = append(*l, &Diagnostic{Pos: pos, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// Append adds every diagnostic found in err: a List, a *Diagnostic, or any
// other error (kept as a diagnostic without position).
func (l *List) Append(err error) {
	if err == nil {
		return
	}
	var list List
	if errors.As(err, &list) {
		*l = append(*l, list...)
		return
	}
	var d *Diagnostic
	if errors.As(err, &d) {
		*l = append(*l, d)
		return
	}
	*l = append(*l, &Diagnostic{Msg: err.Error()})
}

func (l List) Len() int      { return len(l) }
func (l List) Swap(i, j int) { l[i], l[j] = l[j], l[i] }
func (l List) Less(i, j int) bool {
	a, b := l[i].Pos, l[j].Pos
	if a.File != b.File {
		return a.File < b.File
	}
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	if a.Col != b.Col {
		return a.Col < b.Col
	}
	return l[i].Msg < l[j].Msg
}

// Sort orders the list by file, line, column and message, and drops exact
// duplicates (the same problem found twice, e.g. once per environment).
func (l *List) Sort() {
	sort.Stable(*l)
	out := (*l)[:0]
	first := map[string]int{} // a problem (position, message, hint) -> its index in out
	for _, d := range *l {
		key := d.Pos.String() + "\x00" + d.Msg + "\x00" + d.Hint
		i, seen := first[key]
		if !seen {
			first[key] = len(out)
			out = append(out, d)
			continue
		}
		if len(d.Via) > 0 {
			merged := *out[i] // diagnostics may be shared: change a copy
			merged.Via = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(merged.Via), d.Via...))))
			out[i] = &merged
		}
	}
	*l = out
}

// Error lists every diagnostic, one a line.
func (l List) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	for i, d := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(d.Error())
	}
	return b.String()
}

// Err returns nil for an empty list, else the sorted list as an error.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}
