package render

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// Limits bound what rendering may cost, so that a hostile or mistaken
// template (a loop over a billion, a string doubled in a loop, an include
// fanning out exponentially) fails with a positioned error instead of running
// for hours or ending the process out of memory. A stack is often written by
// someone else than the operator who runs it.
//
// A render is one call of RenderFile, RenderString or RenderAt. A run is
// every render whose context carries the same WithRun budget (plan.Build
// makes one per plan).
type Limits struct {
	// Steps bounds the work of one render: each loop iteration and each
	// execution of a template (the text, a define, an include, a tpl) costs
	// one step plus the function calls and template calls written in its
	// body (taken branch or not), and a function costs one more step per
	// 256 bytes it reads or returns. A range over a constant integer above
	// Steps is refused when the text is checked.
	Steps int64
	// Output bounds the bytes one render writes.
	Output int64
	// Value bounds any one value a function or include returns: a string's
	// length, or for lists and maps the bytes their elements would take when
	// printed, counted as often as an element appears.
	Value int64
	// Alloc bounds the bytes of all values the functions of one render
	// return, so that values kept alive at once (a variable on every level of
	// a recursive include) cannot add up.
	Alloc int64
	// RunOutput and RunSteps bound the same across a run.
	RunOutput int64
	RunSteps  int64
	// ErrorText bounds the message of one error; longer ones are cut.
	ErrorText int
}

// DefaultLimits are generous for real manifests (a rendered manifest is
// kilobytes, its loops run tens of times) and stop a hostile template in
// well under a second each.
var DefaultLimits = Limits{
	Steps:     1 << 20,
	Output:    16 << 20,
	Value:     16 << 20,
	Alloc:     256 << 20,
	RunOutput: 256 << 20,
	RunSteps:  64 << 20,
	ErrorText: 1 << 20,
}

// WithLimits replaces DefaultLimits; a zero field keeps its default.
func WithLimits(l Limits) Option {
	return func(o *options) { o.limits = l }
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	for _, f := range []struct{ v, def *int64 }{
		{&l.Steps, &d.Steps}, {&l.Output, &d.Output}, {&l.Value, &d.Value}, {&l.Alloc, &d.Alloc},
		{&l.RunOutput, &d.RunOutput}, {&l.RunSteps, &d.RunSteps},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.ErrorText <= 0 {
		l.ErrorText = d.ErrorText
	}
	return l
}

// runBudget is shared by the renders of one run, possibly at once.
type runBudget struct {
	steps  atomic.Int64
	output atomic.Int64
}

type runKey struct{}

// WithRun returns a context under which every render shares one budget of
// Limits.RunOutput and Limits.RunSteps: the renders of one plan, say.
func WithRun(ctx context.Context) context.Context {
	return context.WithValue(ctx, runKey{}, &runBudget{})
}

// budget is what one render has spent.
//
// Steps and output are counted here, in the render's own goroutine; the
// run's shared counters and the context are consulted only at checkpoints
// (every checkEvery steps, every outEvery bytes, and at the render's first
// step and write), so that the hot path is two additions and two
// comparisons: an atomic shared by the render workers and a channel receive
// on every step cost as much as the rest of the charge. A render that runs
// on is still stopped within checkEvery steps of a cancellation, and a run
// within a checkpoint's worth per worker of its limits (at most 1/64 of
// them).
type budget struct {
	lim    *Limits
	ctx    context.Context
	done   <-chan struct{}
	run    *runBudget
	steps  int64
	alloc  int64
	output int64
	// the next checkpoints, and what has been added to the run's counters
	nextStep, nextOut int64
	runSteps, runOut  int64
	err               error // the first limit exceeded: later errors are its consequence
	// file and line of the last step, where an output limit is reported:
	// text/template does not place errors of its writer.
	file string
	line int
}

// checkEvery and outEvery bound the steps and output bytes between two
// checkpoints (see budget); smaller for a run limit below 64 times them.
const (
	checkEvery = 1 << 12
	outEvery   = 1 << 20
)

// reset starts a new budget under ctx.
func (b *budget) reset(ctx context.Context, lim *Limits) {
	*b = budget{lim: lim, ctx: ctx, done: ctx.Done()}
	b.run, _ = ctx.Value(runKey{}).(*runBudget)
}

// exceeded records and returns the error for a limit.
func (b *budget) exceeded(format string, args ...any) error {
	if b.err == nil {
		b.err = userError(fmt.Sprintf(format, args...) + " (" + limitHint + ")")
	}
	return b.err
}

const limitHint = "a template must not loop, recurse or grow values without bound; see docs/architecture.md, render budget"

// step charges n steps; at a checkpoint it also checks whether the render
// was cancelled and charges the run.
func (b *budget) step(n int64) error {
	if b.err != nil {
		return b.err
	}
	b.steps += n
	if b.steps > b.lim.Steps {
		return b.exceeded("render budget exceeded: more than %d steps (loop iterations and template and function calls)", b.lim.Steps)
	}
	if b.steps < b.nextStep {
		return nil
	}
	return b.checkpoint()
}

// checkpoint checks for cancellation and adds the steps since the last
// checkpoint to the run's.
func (b *budget) checkpoint() error {
	select {
	case <-b.done:
		b.err = b.ctx.Err()
		return b.err
	default:
	}
	b.nextStep = b.steps + min(checkEvery, max(b.lim.RunSteps>>6, 1))
	if b.run != nil {
		d := b.steps - b.runSteps
		b.runSteps = b.steps
		if b.run.steps.Add(d) > b.lim.RunSteps {
			return b.exceeded("render budget exceeded: more than %d steps in all the templates of this run", b.lim.RunSteps)
		}
	}
	return nil
}

// flush adds to the run what the render spent since its last checkpoints,
// when it ends; the run's next checkpoint sees it.
func (b *budget) flush() {
	if b.run != nil {
		b.run.steps.Add(b.steps - b.runSteps)
		b.run.output.Add(b.output - b.runOut)
		b.runSteps, b.runOut = b.steps, b.output
	}
}

// value checks a value of size bytes that a function returns, and charges
// it to the render.
func (b *budget) value(size int64, what string) error {
	if size > b.lim.Value {
		return b.exceeded("%s returns more than %d bytes", what, b.lim.Value)
	}
	b.alloc += size
	if b.alloc > b.lim.Alloc {
		return b.exceeded("render budget exceeded: functions returned more than %d bytes in all", b.lim.Alloc)
	}
	return b.step(1 + size>>8)
}

// write charges n bytes of output.
func (b *budget) write(n int) error {
	b.output += int64(n)
	if b.output > b.lim.Output {
		return b.exceeded("output exceeds %d bytes", b.lim.Output)
	}
	if b.output < b.nextOut || b.run == nil {
		return nil
	}
	b.nextOut = b.output + min(outEvery, max(b.lim.RunOutput>>6, 1))
	d := b.output - b.runOut
	b.runOut = b.output
	if b.run.output.Add(d) > b.lim.RunOutput {
		return b.exceeded("output of this run exceeds %d bytes in all", b.lim.RunOutput)
	}
	return nil
}

// limitedWriter writes to w what the budget allows, w being the render's
// output or the buffer of an include (limit: the value an include returns).
type limitedWriter struct {
	w     *bytes.Buffer // concrete: a write is then a direct call
	b     *budget
	n     int64
	limit int64 // 0: only the budget's output limits
	what  string
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.n += int64(len(p))
	if l.limit > 0 && l.n > l.limit {
		return 0, l.b.exceeded("%s returns more than %d bytes", l.what, l.limit)
	}
	if l.limit == 0 {
		if err := l.b.write(len(p)); err != nil {
			return 0, err
		}
	}
	return l.w.Write(p)
}

// place positions an error of the render's writer (an output limit, which
// text/template returns without a position) at the last step taken.
func (b *budget) place(err error) error {
	if b.err == nil || err != b.err || b.file == "" {
		return err
	}
	return &diag.Diagnostic{Pos: diag.Pos{File: b.file, Line: b.line}, Msg: err.Error()}
}

// cut shortens a message to the error text limit.
func cut(msg string, limit int) string {
	if len(msg) <= limit {
		return msg
	}
	return fmt.Sprintf("%s... (%d more bytes)", msg[:limit], len(msg)-limit)
}

// cutAll applies cut to every diagnostic of errs.
func cutAll(errs diag.List, limit int) diag.List {
	for i, d := range errs {
		if len(d.Msg) > limit {
			c := *d
			c.Msg = cut(d.Msg, limit)
			errs[i] = &c
		}
	}
	return errs
}
