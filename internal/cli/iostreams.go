package cli

import (
	"bytes"
	"io"

	"golang.org/x/term"
)

// IOStreams are the standard streams of a command and whether each is a
// terminal. The terminal checks look at the real descriptors unless a test
// has set them (SetStdinTTY and friends), so that both the terminal and the
// non-terminal paths of a command can be tested with buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY, stdoutTTY, stderrTTY *bool
}

// NewTestIOStreams returns streams over buffers, none of them a terminal
// until set otherwise, and the buffers: what the command reads, and what it
// writes to stdout and stderr.
func NewTestIOStreams() (ios IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	ios = IOStreams{In: in, Out: out, ErrOut: errOut}
	ios.SetStdinTTY(false)
	ios.SetStdoutTTY(false)
	ios.SetStderrTTY(false)
	return ios, in, out, errOut
}

// SetStdinTTY makes IsStdinTTY report tty, whatever In is.
func (s *IOStreams) SetStdinTTY(tty bool) { s.stdinTTY = &tty }

// SetStdoutTTY makes IsStdoutTTY report tty, whatever Out is.
func (s *IOStreams) SetStdoutTTY(tty bool) { s.stdoutTTY = &tty }

// SetStderrTTY makes IsStderrTTY report tty, whatever ErrOut is.
func (s *IOStreams) SetStderrTTY(tty bool) { s.stderrTTY = &tty }

// IsStdinTTY reports whether In is an interactive terminal.
func (s IOStreams) IsStdinTTY() bool { return isTTY(s.stdinTTY, s.In) }

// IsStdoutTTY reports whether Out is an interactive terminal.
func (s IOStreams) IsStdoutTTY() bool { return isTTY(s.stdoutTTY, s.Out) }

// IsStderrTTY reports whether ErrOut is an interactive terminal.
func (s IOStreams) IsStderrTTY() bool { return isTTY(s.stderrTTY, s.ErrOut) }

// CanPrompt reports whether an operator can answer a question: one is read
// from In and asked on ErrOut, so both must be terminals.
func (s IOStreams) CanPrompt() bool { return s.IsStdinTTY() && s.IsStderrTTY() }

func isTTY(set *bool, stream any) bool {
	if set != nil {
		return *set
	}
	return IsTerminal(stream)
}

// IsTerminal reports whether a stream is an interactive terminal.
func IsTerminal(stream any) bool {
	f, ok := stream.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
