package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// Prompter asks the operator questions. Commands ask only when
// IOStreams.CanPrompt says someone is there to answer; otherwise they need
// a flag (--yes) instead. Every method returns ctx.Err() when the context
// ends first (Ctrl-C), with the terminal as it was.
type Prompter interface {
	// Confirm asks a yes/no question; an empty answer is def.
	Confirm(ctx context.Context, question string, def bool) (bool, error)
	// Input asks for a line of text; an empty answer is def.
	Input(ctx context.Context, question, def string) (string, error)
	// Password asks for a secret without echoing it.
	Password(ctx context.Context, question string) (string, error)
}

// ErrNoAnswer is returned when the input ends before an answer.
var ErrNoAnswer = errors.New("no answer given")

// terminalPrompter asks on the error stream and reads answers from In.
type terminalPrompter struct {
	io    IOStreams
	lines *bufio.Reader
}

// newPrompter returns the prompter over a command's streams.
func newPrompter(ios IOStreams) *terminalPrompter {
	return &terminalPrompter{io: ios, lines: bufio.NewReader(ios.In)}
}

func (p *terminalPrompter) Confirm(ctx context.Context, question string, def bool) (bool, error) {
	hint := "[y/N]"
	if def {
		hint = "[Y/n]"
	}
	for {
		answer, err := p.Input(ctx, question+" "+hint, "")
		if err != nil {
			return false, err
		}
		switch strings.ToLower(answer) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.io.ErrOut, "Answer y or n.")
	}
}

func (p *terminalPrompter) Input(ctx context.Context, question, def string) (string, error) {
	if def != "" {
		question += " (" + def + ")"
	}
	fmt.Fprint(p.io.ErrOut, question+" ")
	line, err := readInterruptibly(ctx, func() (string, error) { return p.lines.ReadString('\n') })
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", answerError(ctx, err)
	}
	if line = strings.TrimSpace(line); line == "" {
		return def, nil
	}
	return line, nil
}

// Password reads a line with echo off when In is a terminal. If the context
// ends while it waits, the terminal's state (echo on) is restored before it
// returns.
func (p *terminalPrompter) Password(ctx context.Context, question string) (string, error) {
	fmt.Fprint(p.io.ErrOut, question+" ")
	f, ok := p.io.In.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		// Streams of a test, or input piped in: nothing to hide.
		line, err := readInterruptibly(ctx, func() (string, error) { return p.lines.ReadString('\n') })
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			return "", answerError(ctx, err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(f.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read the terminal's state: %w", err)
	}
	secret, err := readInterruptibly(ctx, func() (string, error) {
		b, err := term.ReadPassword(fd)
		return string(b), err
	})
	fmt.Fprintln(p.io.ErrOut) // the operator's Enter was not echoed
	if ctx.Err() != nil {
		_ = term.Restore(fd, state)
		return "", ctx.Err()
	}
	if err != nil {
		return "", answerError(ctx, err)
	}
	return secret, nil
}

// readInterruptibly runs a blocking read and returns when it finishes or
// ctx ends, whichever is first. A read left blocked ends with the process,
// which is what an interrupted command does next.
func readInterruptibly(ctx context.Context, read func() (string, error)) (string, error) {
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := read()
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func answerError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		return ErrNoAnswer
	}
	return fmt.Errorf("read the answer: %w", err)
}
