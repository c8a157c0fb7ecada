//go:build linux

package cli

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestPasswordOnARealTerminal asks for a secret on a pseudo-terminal: the
// typed text is not echoed, and echo is back on afterwards, also when the
// question is interrupted.
func TestPasswordOnARealTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	ios := IOStreams{In: tty, Out: tty, ErrOut: tty}
	if !ios.CanPrompt() {
		t.Fatal("a pty is a terminal")
	}
	echo := func() bool {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return tio.Lflag&unix.ECHO != 0
	}
	if !echo() {
		t.Fatal("echo is off before the question")
	}
	screen := make(chan string, 1)
	go func() {
		r := bufio.NewReader(ptmx)
		var b strings.Builder
		for {
			c, err := r.ReadByte()
			if err != nil {
				screen <- b.String()
				return
			}
			b.WriteByte(c)
			if strings.HasSuffix(b.String(), "\n") { // the line break after the hidden answer
				screen <- b.String()
				return
			}
		}
	}()

	p := newPrompter(ios)
	got := make(chan string, 1)
	go func() {
		s, err := p.Password(context.Background(), "Token:")
		if err != nil {
			t.Errorf("Password: %v", err)
		}
		got <- s
	}()
	waitFor(t, func() bool { return !echo() }, "echo off while the secret is typed")
	if _, err := ptmx.Write([]byte("s3cret\n")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "s3cret" {
		t.Errorf("Password = %q, want s3cret", s)
	}
	if out := <-screen; strings.Contains(out, "s3cret") {
		t.Errorf("the secret was echoed: %q", out)
	}
	if !echo() {
		t.Errorf("echo is off after the answer")
	}

	// Interrupted: the context ends while the question waits.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := newPrompter(ios).Password(ctx, "Token:")
		errc <- err
	}()
	waitFor(t, func() bool { return !echo() }, "echo off while the second question waits")
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Errorf("interrupted Password = %v, want context.Canceled", err)
	}
	if !echo() {
		t.Errorf("echo is off after the interrupted question")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
