// Package cli is the codex-bootstrap command line: a thin layer over the
// servicescfg engine. Each verb has an Options struct and a run function that
// takes its IO from the Factory, so commands are testable without a process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command.
const (
	ExitOK        = 0
	ExitFailure   = 1 // invalid input or a failed operation
	ExitUsage     = 2 // bad flags, arguments or targets
	ExitChanges   = 3 // reconcile --diff --exit-code: an apply would change something
	ExitInterrupt = 130
)

// Factory carries what commands need from the process: streams, the
// environment, the prompter and the logger. Tests build one with buffers.
type Factory struct {
	IO        IOStreams
	LookupEnv func(string) (string, bool)
	// Prompter asks the operator; nil asks on IO's terminal.
	Prompter Prompter
	// Verbosity is raised by -v.
	Verbosity int
	logger    *slog.Logger
}

// prompter returns the factory's prompter.
func (f *Factory) prompter() Prompter {
	if f.Prompter == nil {
		f.Prompter = newPrompter(f.IO)
	}
	return f.Prompter
}

// Logger returns the logger writing to the error stream.
func (f *Factory) Logger() *slog.Logger {
	if f.logger == nil {
		level := slog.LevelWarn
		if f.Verbosity >= 2 {
			level = slog.LevelDebug
		} else if f.Verbosity == 1 {
			level = slog.LevelInfo
		}
		f.logger = slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: level}))
	}
	return f.logger
}

// usageError marks an error as the caller's mistake in invoking the command.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// UsageErrorf returns an error that exits with ExitUsage.
func UsageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// AsUsage marks err as a usage error.
func AsUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

// silentError has already been reported on the error stream.
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// ExitCode maps an error to the process exit code. It is the one place that
// decides exit codes.
func ExitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupt
	case errors.Is(err, ErrChanges):
		return ExitChanges
	default:
		return ExitFailure
	}
}

// Main runs the command line with the process's streams and arguments and
// returns the exit code.
func Main() int {
	// A run is short-lived and allocation-heavy (every manifest is rendered
	// and parsed): trade memory for less collector work unless told otherwise.
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(800)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &Factory{
		IO:        IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		LookupEnv: os.LookupEnv,
	}
	return Run(ctx, f, os.Args[1:])
}

// Run executes one command line and returns the exit code, reporting any
// error on the factory's error stream.
func Run(ctx context.Context, f *Factory, args []string) int {
	out := &outWriter{w: f.IO.Out}
	defer func(w io.Writer) { f.IO.Out = w }(f.IO.Out)
	f.IO.Out = out
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	if err == nil && out.err != nil {
		// A report or plan that did not reach its reader is no success.
		err = fmt.Errorf("cannot write the output: %w", out.err)
	}
	code := ExitCode(err)
	var silent *silentError
	switch {
	case err == nil, errors.As(err, &silent):
	case code == ExitInterrupt:
		fmt.Fprintln(f.IO.ErrOut, "interrupted")
	case code == ExitUsage:
		writeProblems(f.IO.ErrOut, errorLines(fmt.Errorf("error: %w", err)))
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", commandPath(root, args))
	default:
		writeProblems(f.IO.ErrOut, errorLines(fmt.Errorf("error: %w", err)))
	}
	return code
}

// outWriter is the output stream, remembering the first error writing to
// it. It keeps the descriptor of a file, so IsTerminal still sees it.
type outWriter struct {
	w   io.Writer
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// Fd is the descriptor of the stream, or an invalid one.
func (o *outWriter) Fd() uintptr {
	if f, ok := o.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// commandPath names the command the arguments select, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.CommandPath()
	}
	return cmd.CommandPath()
}

// NewRootCmd builds the command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:   "codex-bootstrap",
		Short: "Validate, plan and deploy whole environments from one services.yaml, and install clean servers",
		Long: `codex-bootstrap deploys a whole environment to Kubernetes from one typed
services.yaml: infrastructure, migrations, internal services, edge and
frontend, in that order, each waited for before the next starts.

services.yaml is the single source of truth: nodes, deploy groups,
dependencies, environments (dev, staging, one namespace per task slot, prod),
runtime parity (hot reload outside prod) and the bootstrap steps of a clean
server, which validate renders and checks and install runs on the server
over one SSH connection before deploying to it.

Exit codes: 0 success, 1 invalid input or failed operation, 2 usage error,
3 changes found (reconcile --diff --exit-code), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Positional arguments to the root are mistyped verbs.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return UsageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.PersistentFlags().StringVar(&configPath, "config", "services.yaml", "path of the stack file; paths inside it are relative to its directory")
	root.PersistentFlags().CountVarP(&f.Verbosity, "verbose", "v", "log more (repeat for debug logs); logs go to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return AsUsage(err) })
	root.CompletionOptions.HiddenDefaultCmd = false

	cfg := func() string { return configPath }
	root.AddCommand(
		NewCmdValidate(f, cfg, nil),
		NewCmdReconcile(f, cfg, nil),
		NewCmdInstall(f, cfg, nil),
		NewCmdSync(f, cfg, nil),
		NewCmdVersion(f),
	)
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return UsageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
