package remote

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
)

//go:embed runner.sh
var runnerScript []byte

// StateDir is where install keeps its state on the server (root only):
// StateDir/PROJECT/steps/STEP are the markers of finished steps, holding
// the hash of what the step was made of.
const StateDir = "/var/lib/codex-bootstrap"

// Group is the group and phase of bootstrap step events.
const Group = "bootstrap"

const (
	defaultKillGrace = 5 * time.Second
	defaultLockWait  = time.Minute
	lastLines        = 20
)

// RunOptions configure Run.
type RunOptions struct {
	// Project names the server's state folder (StateDir/PROJECT).
	Project string
	Selection
	// Stdout and Stderr receive the steps' output, line by line, each line
	// prefixed with "[STEP] ", secret values masked.
	Stdout, Stderr io.Writer
	// Observer receives an event as each step starts and ends (node: the
	// step; group and phase: bootstrap).
	Observer apply.Observer
	// Now is the clock of events (default time.Now).
	Now func() time.Time
	// KillGrace is how long a step's process group has after SIGTERM before
	// SIGKILL (default 5 s); LockWait how long a step waits for the host's
	// lock (default 1 min).
	KillGrace, LockWait time.Duration
}

// StepResult is what happened to one step.
type StepResult struct {
	Name     string
	Status   apply.Status
	Duration time.Duration
	// Reason says why a step was skipped.
	Reason string
}

// StepError is a step that did not finish.
type StepError struct {
	Step string
	// ExitCode is the script's exit status (-1 when it has none: the
	// connection was lost, or the step was stopped).
	ExitCode int
	// Last are the step's last output lines (secret values masked).
	Last []string
	// Err is the cause when the script did not simply exit non-zero:
	// ErrConnectionLost, context.DeadlineExceeded (the step's timeout) or
	// the caller's context error.
	Err error
	// Timeout is the step's timeout, when it ran out.
	Timeout time.Duration
}

func (e *StepError) Error() string {
	var b strings.Builder
	switch {
	case e.Timeout > 0:
		fmt.Fprintf(&b, "step %s timed out after %s; its process group was killed", e.Step, e.Timeout)
	case errors.Is(e.Err, ErrConnectionLost):
		fmt.Fprintf(&b, "step %s was cut off: %v; the server killed what the step had started; run install again to resume at %s", e.Step, e.Err, e.Step)
	case e.Err != nil:
		fmt.Fprintf(&b, "step %s stopped: %v; its process group was killed", e.Step, e.Err)
	default:
		fmt.Fprintf(&b, "step %s failed with exit code %d", e.Step, e.ExitCode)
	}
	if len(e.Last) > 0 {
		fmt.Fprintf(&b, "; its last output lines:\n  %s", strings.Join(e.Last, "\n  "))
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// Run runs the steps on the server, in order, under the host's install
// lock: finished unchanged steps are skipped (see Selection), each step's
// files and script are uploaded and run as root in a process group of its
// own, with its variables on stdin. It stops at the first step that fails.
func Run(ctx context.Context, c *Client, steps []Step, opts RunOptions) ([]StepResult, error) {
	if err := checkSteps(opts.Project, steps); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	names := make([]string, len(steps))
	uploads := make([]upload, len(steps))
	hashes := make([]string, len(steps))
	for i, s := range steps {
		u, err := measure(s)
		if err != nil {
			return nil, err
		}
		names[i], uploads[i], hashes[i] = s.Name, u, u.hash
	}
	lock, markers, err := c.lockHost(ctx, opts.Project)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	decisions, err := decide(names, hashes, markers, opts.Selection)
	if err != nil {
		return nil, err
	}
	var results []StepResult
	for i, s := range steps {
		if !decisions[i].run {
			emit(opts, apply.Event{Node: s.Name, Status: apply.StatusSkipped, Message: decisions[i].reason})
			results = append(results, StepResult{Name: s.Name, Status: apply.StatusSkipped, Reason: decisions[i].reason})
			continue
		}
		start := opts.Now()
		emit(opts, apply.Event{Node: s.Name, Status: apply.StatusStarted})
		err := c.runStep(ctx, s, uploads[i], opts)
		r := StepResult{Name: s.Name, Status: apply.StatusReady, Duration: opts.Now().Sub(start)}
		if err != nil {
			r.Status = apply.StatusFailed
		}
		results = append(results, r)
		emit(opts, apply.Event{Node: s.Name, Status: r.Status, Duration: r.Duration, Message: eventMessage(err)})
		if err != nil {
			return results, err
		}
		if err := lock.lost(); err != nil {
			return results, err
		}
	}
	return results, nil
}

func emit(opts RunOptions, e apply.Event) {
	if opts.Observer == nil {
		return
	}
	e.Time, e.Group, e.Phase = opts.Now(), Group, apply.PhaseBootstrap
	opts.Observer.Event(e)
}

// eventMessage is the first line of a step's error: never its output.
func eventMessage(err error) string {
	if err == nil {
		return ""
	}
	var se *StepError
	if errors.As(err, &se) {
		short := *se
		short.Last = nil
		return short.Error()
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// hostLock is the session that holds the host's install lock: it ends
// (and the server lets go of the lock) when install closes it or the
// connection ends.
type hostLock struct {
	session *ssh.Session
	stdin   io.WriteCloser
	ended   chan error
}

// lockScript takes the install lock, installs the runner (its size on the
// first line of stdin) and lists the markers of the project's steps.
const lockScript = `set -u
umask 077
base=%[1]s state=%[1]s/%[2]s
mkdir -p "$state/steps" "$state/run" && chmod 0700 "$base" || exit 90
exec 8>>"$base/install.lock"
flock -w %[3]d 8 || { echo "codex-bootstrap: another install is running on this host ($base/install.lock is held)" >&2; exit 75; }
IFS= read -r size || exit 90
head -c "$size" >"$base/runner.sh.tmp" && mv -f "$base/runner.sh.tmp" "$base/runner.sh" || exit 90
for f in "$state"/steps/*; do
	[ -f "$f" ] && printf 'marker %%s %%s\n' "${f##*/}" "$(cat -- "$f")"
done
echo locked
while IFS= read -r _; do :; done
`

func (c *Client) lockHost(ctx context.Context, project string) (*hostLock, map[string]string, error) {
	s, err := c.session()
	if err != nil {
		return nil, nil, err
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		_ = s.Close()
		return nil, nil, err
	}
	var stderr strings.Builder
	s.Stderr = &stderr
	cmd := fmt.Sprintf(lockScript, StateDir, project, int(defaultLockWait.Seconds()))
	if err := s.Start(c.asRoot(cmd)); err != nil {
		_ = s.Close()
		return nil, nil, c.wrap(err)
	}
	l := &hostLock{session: s, stdin: stdin, ended: make(chan error, 1)}
	_, _ = fmt.Fprintf(stdin, "%d\n", len(runnerScript))
	_, _ = stdin.Write(runnerScript)
	markers, err := readMarkers(ctx, stdout)
	if err != nil {
		l.release()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		werr := c.wrap(s.Wait())
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, nil, fmt.Errorf("lock %s: %s", c.target.Host, msg)
		}
		if werr != nil {
			return nil, nil, fmt.Errorf("lock %s: %w", c.target.Host, werr)
		}
		return nil, nil, fmt.Errorf("lock %s: %w", c.target.Host, err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		l.ended <- c.wrap(s.Wait())
	}()
	return l, markers, nil
}

func readMarkers(ctx context.Context, stdout io.Reader) (map[string]string, error) {
	type result struct {
		m   map[string]string
		err error
	}
	done := make(chan result, 1)
	go func() {
		m := map[string]string{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "locked":
				done <- result{m: m}
				return
			case len(f) == 3 && f[0] == "marker":
				m[f[1]] = f[2]
			}
		}
		done <- result{err: errors.New("the server ended the session before taking the lock")}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lost reports the lock session's end while install still runs.
func (l *hostLock) lost() error {
	select {
	case err := <-l.ended:
		if err == nil {
			err = errors.New("the server ended it")
		}
		return fmt.Errorf("the session holding the host's install lock ended: %w", err)
	default:
		return nil
	}
}

func (l *hostLock) release() {
	_ = l.stdin.Close()
	_ = l.session.Close()
}

// runnerCommand is the command line of one step: no secret in it.
func (c *Client) runnerCommand(project, step, hash string, opts RunOptions) string {
	grace := orDefault(opts.KillGrace, defaultKillGrace)
	wait := orDefault(opts.LockWait, defaultLockWait)
	args := []string{"/bin/bash", StateDir + "/runner.sh", StateDir + "/" + project, step, hash,
		StateDir + "/steps.lock", strconv.Itoa(int(wait.Seconds())), strconv.FormatFloat(grace.Seconds(), 'f', -1, 64)}
	if c.sudo {
		args = append([]string{"sudo", "-n", "--"}, args...)
	}
	return strings.Join(args, " ")
}
