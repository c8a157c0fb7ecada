// Package remote runs install's bootstrap steps on a server over SSH: one
// connection per install (golang.org/x/crypto/ssh) with its sessions
// multiplexed over it, host keys checked against known_hosts, keys from
// files and ssh-agent, a non-root user through `sudo -n`, and the step
// runner (see Run). It never prints or prompts: output goes to the writers
// it is given, questions to the caller's Prompter.
package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	defaultKeepAlive = 15 * time.Second
	// keepAliveMisses unanswered keepalives in a row count as a lost
	// connection.
	keepAliveMisses = 3
	dialTimeout     = 30 * time.Second
)

// ErrConnectionLost is wrapped by every error caused by the connection to
// the server ending while it was in use.
var ErrConnectionLost = errors.New("ssh connection lost")

// Config says how to connect.
type Config struct {
	Target Target
	// KnownHosts is the known_hosts file (~/.ssh/known_hosts), made when
	// missing; new keys are recorded there.
	KnownHosts string
	// HostKeyPin ("SHA256:...") accepts an unknown host key with this
	// fingerprint without asking, and refuses any other key.
	HostKeyPin string
	// Prompter asks for host key confirmations and key passphrases; nil
	// when there is no terminal (an unknown key then fails at once).
	Prompter Prompter
	// AgentSocket is the ssh-agent's socket ($SSH_AUTH_SOCK), if any.
	AgentSocket string
	// Home is where the default key files are looked for (~/.ssh/id_*).
	Home string
	// KeepAlive is the interval of keepalive requests (default 15 s).
	KeepAlive time.Duration
	// DialContext makes the TCP connection (default net.Dialer).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is one SSH connection to the server.
type Client struct {
	ssh *ssh.Client
	// jumps are the connections to the ProxyJump hosts, in order.
	jumps  []*ssh.Client
	target Target
	// sudo is true when commands go through `sudo -n` (a non-root user).
	sudo bool

	mu     sync.Mutex
	closed bool
	lost   error
	done   chan struct{}
}

// Dial connects, checks the host key and authenticates, then checks that
// the user is root or may use sudo without a password. A target reached
// through ProxyJump is connected to through its jump hosts, one SSH
// connection to each, every host key checked against known_hosts.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	keys := newKeyring(ctx)
	defer keys.close()
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			_ = jumps[i].Close()
		}
	}
	for _, j := range cfg.Target.Jumps {
		hop := cfg
		hop.Target, hop.HostKeyPin = j, "" // a pin names the server's key
		sc, err := connect(ctx, hop, dial, keys)
		if err != nil {
			closeJumps()
			return nil, &JumpHostError{Jump: j, Of: cfg.Target.Host, Err: err}
		}
		jumps = append(jumps, sc)
		dial = sc.DialContext
	}
	sc, err := connect(ctx, cfg, dial, keys)
	if err != nil {
		closeJumps()
		return nil, err
	}
	c := &Client{ssh: sc, jumps: jumps, target: cfg.Target, done: make(chan struct{})}
	go c.watch()
	go c.keepAlive(orDefault(cfg.KeepAlive, defaultKeepAlive))
	if err := c.checkSudo(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// connect makes one SSH connection to cfg.Target over a connection from
// dial: host key checked, keys offered.
func connect(ctx context.Context, cfg Config, dial func(ctx context.Context, network, addr string) (net.Conn, error), ring *keyring) (*ssh.Client, error) {
	hk, err := newHostKeys(cfg.KnownHosts, cfg.HostKeyPin, cfg.Prompter)
	if err != nil {
		return nil, err
	}
	keys, err := ring.signers(cfg)
	if err != nil {
		return nil, err
	}
	addr := cfg.Target.Addr()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	sc, err := handshake(ctx, conn, addr, &ssh.ClientConfig{
		User:              cfg.Target.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(keys...)},
		HostKeyCallback:   hk.callback(ctx),
		HostKeyAlgorithms: hk.algorithms(addr),
	})
	if err != nil {
		_ = conn.Close()
		if hk.err != nil {
			return nil, hk.err
		}
		return nil, authError(cfg.Target, len(keys), err)
	}
	return sc, nil
}

// JumpHostError: a jump host of ProxyJump could not be reached, was not
// trusted or refused the login.
type JumpHostError struct {
	Jump Target
	// Of is the server the jump host leads to.
	Of  string
	Err error
}

func (e *JumpHostError) Error() string {
	return fmt.Sprintf("jump host %s (ProxyJump of %s): %v", e.Jump.Addr(), e.Of, e.Err)
}

func (e *JumpHostError) Unwrap() error { return e.Err }

// handshake runs the SSH handshake on conn, giving up when ctx ends.
func handshake(ctx context.Context, conn net.Conn, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

func authError(t Target, keys int, err error) error {
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("log in to %s as %s: the server accepted none of the %d keys offered (ssh-agent and identity files); give the key with -i or add it to ssh-agent: %w", t.Addr(), t.User, keys, err)
	}
	return fmt.Errorf("ssh handshake with %s: %w", t.Addr(), err)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// watch records the end of the connection: unless Close ended it, it was
// lost.
func (c *Client) watch() {
	err := c.ssh.Wait()
	c.mu.Lock()
	if !c.closed && c.lost == nil {
		if err == nil {
			err = io.EOF
		}
		c.lost = fmt.Errorf("%w to %s: %v", ErrConnectionLost, c.target.Addr(), err)
	}
	c.mu.Unlock()
	close(c.done)
}

// keepAlive sends keepalive requests; a server that misses several in a row
// is taken as gone and the connection closed.
func (c *Client) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	misses := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			_, _, _ = c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
			misses = 0
		case <-c.done:
			return
		case <-time.After(every):
			misses++
			if misses >= keepAliveMisses {
				c.mu.Lock()
				if c.lost == nil {
					c.lost = fmt.Errorf("%w to %s: no answer to %d keepalives in a row", ErrConnectionLost, c.target.Addr(), misses)
				}
				c.mu.Unlock()
				_ = c.ssh.Close()
				return
			}
		}
	}
}

// Lost returns the reason the connection ended, or nil while it is up or
// after Close.
func (c *Client) Lost() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Close ends the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	err := c.ssh.Close()
	for i := len(c.jumps) - 1; i >= 0; i-- {
		_ = c.jumps[i].Close()
	}
	return err
}

// SSH is the underlying connection, for tunnels (for example client-go's
// rest.Config.Dial through SSHClient().Dial).
func (c *Client) SSH() *ssh.Client { return c.ssh }

// Target is what the client is connected to.
func (c *Client) Target() Target { return c.target }

// Sudo tells whether commands run through `sudo -n`.
func (c *Client) Sudo() bool { return c.sudo }

// SudoError: the user is not root and may not use sudo without a password.
type SudoError struct {
	User, Host, Output string
}

func (e *SudoError) Error() string {
	return fmt.Sprintf("user %s on %s is not root and cannot use sudo without a password (sudo -n said: %s): connect as root, or give %s passwordless sudo (a line '%s ALL=(ALL:ALL) NOPASSWD: ALL' in /etc/sudoers.d/%s)",
		e.User, e.Host, strings.TrimSpace(e.Output), e.User, e.User, e.User)
}

// checkSudo finds out whether commands need sudo, and whether sudo works
// without a password.
func (c *Client) checkSudo(ctx context.Context) error {
	out, err := c.output(ctx, `if [ "$(id -u)" = 0 ]; then echo root; elif sudo -n true 2>&1; then echo sudo; else exit 1; fi`)
	if err != nil {
		if c.Lost() != nil {
			return c.Lost()
		}
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return &SudoError{User: c.target.User, Host: c.target.Host, Output: string(out)}
		}
		return fmt.Errorf("check sudo on %s: %w", c.target.Host, err)
	}
	c.sudo = strings.TrimSpace(lastLine(out)) == "sudo"
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return lines[len(lines)-1]
}

// output runs a command as the login user and returns its combined output.
func (c *Client) output(ctx context.Context, cmd string) ([]byte, error) {
	// Two buffers: the session copies stdout and stderr concurrently.
	var out, errOut bytes.Buffer
	err := c.exec(ctx, cmd, nil, &out, &errOut)
	return append(out.Bytes(), errOut.Bytes()...), err
}

// Command runs a shell command as root on the server (through sudo for a
// non-root user), with stdin, and returns its stdout; stderr is in the
// error when it fails.
func (c *Client) Command(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	var out, errOut bytes.Buffer
	if err := c.exec(ctx, c.asRoot(cmd), stdin, &out, &errOut); err != nil {
		return out.Bytes(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// asRoot wraps a shell command to run as root.
func (c *Client) asRoot(cmd string) string {
	if !c.sudo {
		return "/bin/sh -c " + shellQuote(cmd)
	}
	return "sudo -n -- /bin/sh -c " + shellQuote(cmd)
}

// exec runs cmd in a new session of the connection. When ctx ends first the
// session is closed (the remote command sees its stdin end).
func (c *Client) exec(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(cmd); err != nil {
		return c.wrap(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return c.wrap(err)
	case <-ctx.Done():
		_ = s.Close()
		<-done
		return ctx.Err()
	}
}

func (c *Client) session() (*ssh.Session, error) {
	s, err := c.ssh.NewSession()
	if err != nil {
		return nil, c.wrap(err)
	}
	return s, nil
}

// wrap turns the error of a session into ErrConnectionLost when the
// connection ended under it.
func (c *Client) wrap(err error) error {
	if err == nil {
		return nil
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		// The session failed but the connection lives.
		return err
	}
	if lost := c.Lost(); lost != nil {
		return lost
	}
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ReadFile reads a file on the server as root.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	out, err := c.Command(ctx, "cat -- "+shellQuote(path), nil)
	if err != nil {
		return nil, fmt.Errorf("read %s on %s: %w", path, c.target.Host, err)
	}
	return out, nil
}
