package remote

import (
	"context"
	"errors"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// runStep uploads and runs one step in its own session. Ending the
// session's stdin is how install stops the step: the runner then kills the
// step's process group.
func (c *Client) runStep(ctx context.Context, s Step, u upload, opts RunOptions) error {
	sess, err := c.session()
	if err != nil {
		return &StepError{Step: s.Name, ExitCode: -1, Err: err}
	}
	defer sess.Close()
	out := newStepOutput(s, opts)
	sess.Stdout, sess.Stderr = out.stdout, out.stderr
	stdin, err := sess.StdinPipe()
	if err != nil {
		return &StepError{Step: s.Name, ExitCode: -1, Err: err}
	}
	if err := sess.Start(c.runnerCommand(opts.Project, s.Name, u.hash, opts)); err != nil {
		return &StepError{Step: s.Name, ExitCode: -1, Err: c.wrap(err)}
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(stdin, s, u)
	}()

	stepCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		stepCtx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var stopped error
	select {
	case err = <-done:
	case <-stepCtx.Done():
		// The runner sees its stdin end and kills the step's group; wait
		// for it to report, unless the connection is gone too.
		stopped = stepCtx.Err()
		select {
		case <-fed:
			_ = stdin.Close()
		default:
			// Still uploading: closing the whole channel ends stdin too.
			_ = sess.Close()
		}
		select {
		case err = <-done:
		case <-time.After(orDefault(opts.KillGrace, defaultKillGrace) + 10*time.Second):
			_ = sess.Close()
			err = <-done
		}
	}
	out.flush()
	return c.stepError(ctx, s, err, stopped, out.last())
}

// feed writes the runner's stdin: header, the step's folder as tar, the
// variables; then keeps it open until the session ends.
func feed(stdin io.WriteCloser, s Step, u upload) {
	vars := varsBlock(s.Vars)
	if _, err := io.WriteString(stdin, stdinHeader(u.size, vars)); err != nil {
		return
	}
	if err := writeTar(stdin, s, nil); err != nil {
		// The runner reads fewer bytes than announced and fails the step.
		_ = stdin.Close()
		return
	}
	_, _ = stdin.Write(vars)
	clear(vars)
}

func (c *Client) stepError(ctx context.Context, s Step, err, stopped error, last []string) error {
	if err == nil && stopped == nil {
		return nil
	}
	se := &StepError{Step: s.Name, ExitCode: -1, Last: last}
	var exit *ssh.ExitError
	switch {
	case stopped != nil && ctx.Err() == nil:
		se.Err, se.Timeout = context.DeadlineExceeded, s.Timeout
	case stopped != nil:
		se.Err = stopped
	case errors.As(err, &exit):
		se.ExitCode = exit.ExitStatus()
		if exit.ExitStatus() == 0 && exit.Signal() != "" {
			se.ExitCode = 128
		}
	default:
		se.Err = c.wrap(err)
	}
	return se
}
