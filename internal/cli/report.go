package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// What one run prints about problems is bounded: a stack that fails in
// every template of thousands of nodes, or a template that fails with a
// message of megabytes, still gives a report a terminal or a CI log can
// hold. The first problems in sorted order are printed whole (up to
// maxLine bytes each), then a line says how many more there are.
const (
	maxProblems = 200
	maxLine     = 8 << 10
	maxReport   = 1 << 20
)

// writeProblems prints lines, one problem each, escaped (diag.Escape) and
// within the limits above.
func writeProblems(w io.Writer, lines []string) {
	written := 0
	for i, line := range lines {
		line = diag.Escape(line)
		if len(line) > maxLine {
			line = fmt.Sprintf("%s... (%d more bytes)", line[:maxLine], len(line)-maxLine)
		}
		if i == maxProblems || written+len(line) > maxReport {
			n := len(lines) - i
			noun := "problems"
			if n == 1 {
				noun = "problem"
			}
			fmt.Fprintf(w, "... %d more %s not shown\n", n, noun)
			return
		}
		written += len(line) + 1
		fmt.Fprintln(w, line)
	}
}

// errorLines splits an error's message into its lines (a diag.List has one
// problem a line).
func errorLines(err error) []string {
	return strings.Split(err.Error(), "\n")
}
