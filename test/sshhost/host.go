// Package sshhost gives tests a real clean server reachable over real SSH:
// a Debian bookworm root built by debootstrap (cached, see Root), with
// OpenSSH's sshd started in it, in network, mount, PID and UTS namespaces
// of its own. The host is joined to this machine by a veth pair with
// addresses in 10.213.N.0/30 that exist only for the test: traffic never
// leaves the machine.
//
// Each host gets an overlay of the cached root (changes stay in the test's
// temporary folder), fresh host keys, and a client key authorized for root,
// for UserSudo (passwordless sudo) and for UserNoSudo (in the sudo group,
// but sudo asks for a password it does not have, so `sudo -n` fails).
// The host shares this machine's kernel, so it cannot change what is not
// its own: /proc/sys is read-only there except net (per network
// namespace), and /proc/swaps is empty.
//
// Everything is undone when the test ends, also when it fails: the
// namespace's processes (sshd is its PID 1, so they all go with it), its
// mounts, the network namespace and the veth pair.
//
// The tests need root (namespaces, mounts) and debootstrap. Under
// `go test -short` they are skipped with the reason; otherwise a host that
// cannot start fails the test.
package sshhost

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// UserSudo may run anything through sudo without a password.
	UserSudo = "alice"
	// UserNoSudo is in the sudo group, but has no password to give it.
	UserNoSudo = "bob"

	startTimeout = 2 * time.Minute
	stopTimeout  = 10 * time.Second
	slots        = 64
	lockDir      = "/run/codex-bootstrap-sshhost"
)

// Host is one running test server.
type Host struct {
	// Name is the host name inside it (and the network namespace's name).
	Name string
	// IP is the host's address; Addr is IP:22. Peer is this machine's end
	// of the veth pair: the host reaches a listener of the test there.
	IP   string
	Addr string
	Peer string
	// ClientKey is authorized for root, UserSudo and UserNoSudo;
	// ClientKeyFile holds it in OpenSSH format (mode 0600).
	ClientKey     ssh.Signer
	ClientKeyFile string
	// HostKeys are the keys sshd offers (ed25519 first, then ecdsa).
	HostKeys []ssh.Signer

	slot     int
	dir      string
	upper    string
	cmd      *exec.Cmd
	done     chan struct{}
	listener int // PID of sshd (PID 1 of the host's PID namespace), as seen here
}

// Option changes how a host starts.
type Option func(*options)

type options struct{ keyTypes []string }

// WithHostKeyTypes sets the host key types sshd offers, in its order of
// preference: "ed25519", "ecdsa" (default: both, ed25519 first).
func WithHostKeyTypes(types ...string) Option {
	return func(o *options) { o.keyTypes = types }
}

// Start starts a host for t and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Host {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping integration test under -short: it needs a real SSH host (root, debootstrap)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("sshhost: the SSH host needs root (network, mount and PID namespaces); run the tests as root or with -short")
	}
	o := options{keyTypes: []string{"ed25519", "ecdsa"}}
	for _, opt := range opts {
		opt(&o)
	}
	// A cold cache builds the root first (a minute, more on a busy
	// machine), or waits for another test binary building it.
	rootCtx, cancelRoot := context.WithTimeout(context.Background(), buildTimeout+time.Minute)
	root, err := Root(rootCtx)
	cancelRoot()
	if err != nil {
		t.Fatalf("sshhost: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// Not t.TempDir: overlayfs options are comma-separated, and test
	// names may hold commas.
	dir, err := os.MkdirTemp("", "sshhost-")
	if err != nil {
		t.Fatalf("sshhost: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	h := &Host{dir: dir, done: make(chan struct{})}
	if err := h.allocate(ctx, t); err != nil {
		t.Fatalf("sshhost: %v", err)
	}
	if err := h.prepare(o.keyTypes); err != nil {
		t.Fatalf("sshhost: %v", err)
	}
	if err := h.start(ctx, t, root); err != nil {
		t.Fatalf("sshhost: %v", err)
	}
	return h
}

// allocate takes a free slot (a file lock held until the test ends), and
// makes the slot's network namespace and veth pair, after removing any left
// by a test binary that died.
func (h *Host) allocate(ctx context.Context, t testing.TB) error {
	found := false
	for i := 0; i < slots && !found; i++ {
		unlock, ok, err := tryLock(filepath.Join(lockDir, strconv.Itoa(i)+".lock"))
		if err != nil {
			return fmt.Errorf("take a host slot: %w", err)
		}
		if ok {
			t.Cleanup(unlock)
			h.slot, found = i, true
		}
	}
	if !found {
		return fmt.Errorf("all %d host slots are in use", slots)
	}
	h.Name = fmt.Sprintf("cbsh-%d", h.slot)
	h.IP = fmt.Sprintf("10.213.%d.2", h.slot)
	h.Peer = fmt.Sprintf("10.213.%d.1", h.slot)
	h.Addr = net.JoinHostPort(h.IP, "22")
	h.removeNetwork(ctx)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		h.removeNetwork(c)
	})
	hostIf, nsIf := h.links()
	for _, args := range [][]string{
		{"netns", "add", h.Name},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", h.Name},
		{"addr", "add", h.Peer + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", h.Name, "addr", "add", h.IP + "/30", "dev", nsIf},
		{"-n", h.Name, "link", "set", nsIf, "up"},
		{"-n", h.Name, "link", "set", "lo", "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return fmt.Errorf("make the host's network: %w", err)
		}
	}
	return nil
}

func (h *Host) links() (hostIf, nsIf string) {
	return fmt.Sprintf("cbsh%dh", h.slot), fmt.Sprintf("cbsh%dc", h.slot)
}

func (h *Host) removeNetwork(ctx context.Context) {
	hostIf, _ := h.links()
	// Deleting the namespace takes its end of the pair, and so the pair.
	_ = exec.CommandContext(ctx, "ip", "netns", "del", h.Name).Run()
	_ = exec.CommandContext(ctx, "ip", "link", "del", hostIf).Run()
}

// prepare writes the host's own files into the overlay's upper folder:
// host keys, the authorized client key, host name resolution.
func (h *Host) prepare(keyTypes []string) error {
	h.upper = filepath.Join(h.dir, "upper")
	for _, d := range []string{"upper/etc/ssh", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, kt := range keyTypes {
		signer, pemBytes, err := newKey(kt)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(h.upper, "etc/ssh/ssh_host_"+kt+"_key"), pemBytes, 0o600); err != nil {
			return err
		}
		h.HostKeys = append(h.HostKeys, signer)
	}
	signer, pemBytes, err := newKey("ed25519")
	if err != nil {
		return err
	}
	h.ClientKey = signer
	h.ClientKeyFile = filepath.Join(h.dir, "id_ed25519")
	if err := os.WriteFile(h.ClientKeyFile, pemBytes, 0o600); err != nil {
		return err
	}
	authorized := ssh.MarshalAuthorizedKey(signer.PublicKey())
	for _, u := range []struct{ home, name string }{{"root", "root"}, {"home/" + UserSudo, UserSudo}, {"home/" + UserNoSudo, UserNoSudo}} {
		if err := writeAuthorized(h.upper, u.home, u.name, authorized); err != nil {
			return err
		}
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", h.IP, h.Name)
	if err := os.WriteFile(filepath.Join(h.upper, "etc/hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(h.upper, "etc/hostname"), []byte(h.Name+"\n"), 0o644)
}

// writeAuthorized writes home/.ssh/authorized_keys owned by the user, with
// the modes sshd's StrictModes wants. Home folders copied up from the root
// keep their owner; the user ids are read from the root's passwd later, so
// they are set inside the host (see launch).
func writeAuthorized(upper, home, user string, key []byte) error {
	// Folders made here hide the modes of the root's own in the overlay:
	// give them the usual ones (a user must be able to reach its home).
	if err := os.MkdirAll(filepath.Join(upper, home), 0o755); err != nil {
		return err
	}
	for d := filepath.Join(upper, home); d != upper; d = filepath.Dir(d) {
		mode := os.FileMode(0o755)
		if home == "root" {
			mode = 0o700
		}
		if err := os.Chmod(d, mode); err != nil {
			return err
		}
	}
	dir := filepath.Join(upper, home, ".ssh")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "authorized_keys"), key, 0o600)
}

func newKey(kind string) (ssh.Signer, []byte, error) {
	var priv any
	switch kind {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		priv = k
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		priv = k
	default:
		return nil, nil, fmt.Errorf("unknown key type %q", kind)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return signer, pem.EncodeToMemory(block), nil
}

// launch runs inside the new namespaces (sh is their PID 1 until it execs
// sshd): the overlay root, /proc of the new PID namespace, a /dev of its own
// with a private devpts, a fresh /run, then sshd in the foreground.
const launch = `set -e
lower=$1 upper=$2 work=$3 m=$4 name=$5 ip=$6
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$m"
mount -t proc proc "$m/proc"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$m/dev"
for d in null:3 zero:5 full:7 random:8 urandom:9; do mknod -m 666 "$m/dev/${d%%:*}" c 1 "${d#*:}"; done
mknod -m 666 "$m/dev/tty" c 5 0
mkdir "$m/dev/pts" "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
ln -s /proc/self/fd "$m/dev/fd"
for i in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${i%%:*}" "$m/dev/${i#*:}"; done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$m/dev/shm"
# The host shares this machine's kernel: the settings that are not its
# network namespace's own stay read-only (as in a container), and it sees
# no swap that a step's swapoff -a could turn off.
mount --bind "$m/proc/sys" "$m/proc/sys"
mount -o remount,bind,ro "$m/proc/sys"
mount --bind "$m/proc/sys/net" "$m/proc/sys/net"
mount -o remount,bind,rw "$m/proc/sys/net"
mount --bind "$m/dev/null" "$m/proc/swaps"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$m/run"
mkdir -p "$m/run/sshd" "$m/run/lock"
hostname "$name"
for u in ` + UserSudo + ` ` + UserNoSudo + `; do chroot "$m" chown -R "$u:$u" "/home/$u"; done
keys=
for k in "$m"/etc/ssh/ssh_host_*_key; do keys="$keys -o HostKey=${k#$m}"; done
exec chroot "$m" /usr/sbin/sshd -D -e -o ListenAddress="$ip" -o UsePAM=no \
	-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no \
	-o PermitRootLogin=prohibit-password -o MaxSessions=32 -o MaxStartups=32 $keys
`

// start runs sshd in the host's namespaces and waits until it answers.
func (h *Host) start(ctx context.Context, t testing.TB, root string) error {
	log, err := os.Create(filepath.Join(h.dir, "sshd.log"))
	if err != nil {
		return err
	}
	h.cmd = exec.Command("ip", "netns", "exec", h.Name,
		"unshare", "--mount", "--pid", "--uts", "--fork", "--propagation", "private", "--kill-child=SIGKILL",
		"/bin/sh", "-c", launch, "launch", root, h.upper, filepath.Join(h.dir, "work"), filepath.Join(h.dir, "merged"), h.Name, h.IP)
	h.cmd.Stdout, h.cmd.Stderr = log, log
	// If this test binary dies, unshare dies with it, and takes the
	// namespace's PID 1 (so every process in it) along.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := h.cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("start sshd: %w", err)
	}
	go func() {
		_ = h.cmd.Wait()
		_ = log.Close()
		close(h.done)
	}()
	t.Cleanup(h.stop)
	if err := h.waitListening(ctx); err != nil {
		out, _ := os.ReadFile(log.Name())
		return fmt.Errorf("%w; sshd log:\n%s", err, tail(out, 30))
	}
	return nil
}

// waitListening waits until sshd accepts connections and records its PID.
func (h *Host) waitListening(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", h.Addr, time.Second); err == nil {
			_ = c.Close()
			pid, err := firstChild(h.cmd.Process.Pid)
			if err != nil {
				return err
			}
			h.listener = pid
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd did not answer on %s: %w", h.Addr, ctx.Err())
		case <-h.done:
			return errors.New("sshd exited")
		case <-tick.C:
		}
	}
}

// firstChild is the PID of the only child of pid (unshare's child: the
// namespace's PID 1).
func firstChild(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("unshare has %d children, want 1", len(f))
	}
	return strconv.Atoi(f[0])
}

// stop kills the namespace's PID 1 (the kernel then kills every process in
// it, and its mounts go with the mount namespace) and waits for unshare.
func (h *Host) stop() {
	if h.listener > 0 {
		// unshare reaps it and exits.
		_ = syscall.Kill(h.listener, syscall.SIGKILL)
	} else {
		_ = h.cmd.Process.Kill()
	}
	select {
	case <-h.done:
	case <-time.After(stopTimeout):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// Exec runs a shell script inside the host as root (in its namespaces and
// root, not over SSH) and returns its combined output.
func (h *Host) Exec(ctx context.Context, script string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(h.listener), "-m", "-u", "-n", "-p", "-r", "-w",
		"/bin/sh", "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("on the host: %s: %w: %s", script, err, out.String())
	}
	return out.String(), nil
}

// Upper is the folder that holds every file the host created or changed
// since it started (the overlay's upper layer), as seen from here.
func (h *Host) Upper() string { return h.upper }

// Path returns where a file of the host is seen from here.
func (h *Host) Path(p string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", h.listener), p)
}

// Process is one process of the host.
type Process struct {
	PID     int // as seen from here
	PPID    int
	PGID    int
	Comm    string
	Cmdline string // arguments joined by spaces
}

// Processes lists the processes of the host's PID namespace, sshd's
// listener included.
func (h *Host) Processes() ([]Process, error) {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.listener))
	if err != nil {
		return nil, fmt.Errorf("host stopped: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != want {
			continue
		}
		p, ok := readProcess(pid)
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func readProcess(pid int) (Process, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Process{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Process{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 3 {
		return Process{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, _ := strconv.Atoi(f[2])
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return Process{
		PID: pid, PPID: ppid, PGID: pgid, Comm: s[open+1 : end],
		Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")),
	}, true
}

// Strays waits up to timeout for the host to run nothing but sshd (its
// listener and the processes serving connections) and returns what still
// runs then, as "PID command line" (nil when nothing does).
func (h *Host) Strays(timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		procs, err := h.Processes()
		if err != nil {
			return nil, err
		}
		var left []string
		for _, p := range procs {
			if p.Comm != "sshd" {
				left = append(left, fmt.Sprintf("%d %s", p.PID, p.Cmdline))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// KillConnections cuts every SSH connection to the host at once: it kills
// (SIGKILL) each sshd process that serves a connection, leaving the
// listener, as a network failure or a crashed sshd would. It returns how
// many it killed.
func (h *Host) KillConnections() (int, error) {
	procs, err := h.Processes()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range procs {
		if p.Comm == "sshd" && p.PID != h.listener {
			if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// ReplaceHostKeys gives the host new host keys of the same types, as a
// reinstalled server (or an attacker) would have, and makes sshd use them.
func (h *Host) ReplaceHostKeys(ctx context.Context) error {
	var signers []ssh.Signer
	for _, old := range h.HostKeys {
		kt := strings.TrimPrefix(old.PublicKey().Type(), "ssh-")
		if strings.HasPrefix(kt, "ecdsa") {
			kt = "ecdsa"
		}
		signer, pemBytes, err := newKey(kt)
		if err != nil {
			return err
		}
		if err := os.WriteFile(h.Path("/etc/ssh/ssh_host_"+kt+"_key"), pemBytes, 0o600); err != nil {
			return err
		}
		signers = append(signers, signer)
	}
	h.HostKeys = signers
	// OpenSSH 9.2 (bookworm) re-executes itself for each connection and
	// reads the keys then: the next connection already has them. A sshd
	// whose listener holds its keys needs SIGHUP (it re-executes itself);
	// sending it anyway would close the listener for a moment.
	if h.offers(signers[0].PublicKey()) {
		return nil
	}
	if err := syscall.Kill(h.listener, syscall.SIGHUP); err != nil {
		return err
	}
	return h.waitKey(ctx, signers[0].PublicKey())
}

func (h *Host) waitKey(ctx context.Context, want ssh.PublicKey) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if h.offers(want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd did not take its new host key: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// offers tells whether the host greets a connection with key.
func (h *Host) offers(key ssh.PublicKey) bool {
	seen := false
	cfg := &ssh.ClientConfig{
		User:              "root",
		HostKeyAlgorithms: []string{key.Type()},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			seen = bytes.Equal(k.Marshal(), key.Marshal())
			return errors.New("probe only")
		},
		Timeout: time.Second,
	}
	c, err := ssh.Dial("tcp", h.Addr, cfg)
	if err == nil {
		_ = c.Close()
	}
	return seen
}

// KnownHostsLine is the known_hosts line for the host's first key.
func (h *Host) KnownHostsLine() string {
	return fmt.Sprintf("%s %s", h.IP, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.HostKeys[0].PublicKey()))))
}
