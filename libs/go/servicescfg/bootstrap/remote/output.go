package remote

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLine bounds a line kept in memory; longer ones are cut there.
const maxLine = 64 << 10

// stepOutput prefixes a step's lines with its name, masks secret values,
// and keeps the last lines for the error of a failed step.
type stepOutput struct {
	stdout, stderr *lineWriter

	mu   sync.Mutex
	ring []string
	mask *strings.Replacer
}

func newStepOutput(s Step, opts RunOptions) *stepOutput {
	o := &stepOutput{}
	var pairs []string
	for _, v := range s.Vars {
		if v.Secret && v.Value != "" {
			pairs = append(pairs, v.Value, "***")
		}
	}
	o.mask = strings.NewReplacer(pairs...)
	prefix := "[" + s.Name + "] "
	o.stdout = &lineWriter{o: o, w: orDiscard(opts.Stdout), prefix: prefix}
	o.stderr = &lineWriter{o: o, w: orDiscard(opts.Stderr), prefix: prefix}
	return o
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func (o *stepOutput) line(w io.Writer, prefix string, b []byte) {
	text := o.mask.Replace(strings.TrimRight(string(b), "\r"))
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ring = append(o.ring, text)
	if len(o.ring) > lastLines {
		o.ring = o.ring[len(o.ring)-lastLines:]
	}
	_, _ = io.WriteString(w, prefix+text+"\n")
}

func (o *stepOutput) flush() {
	o.stdout.flush()
	o.stderr.flush()
}

func (o *stepOutput) last() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ring...)
}

// lineWriter splits a stream into lines.
type lineWriter struct {
	o      *stepOutput
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.o.line(l.w, l.prefix, l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLine {
		l.o.line(l.w, l.prefix, l.buf)
		l.buf = nil
	}
	return len(p), nil
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.o.line(l.w, l.prefix, l.buf)
		l.buf = nil
	}
}
