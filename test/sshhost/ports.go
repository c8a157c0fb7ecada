package sshhost

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What answers on a host's ports is checked from other network namespaces
// the test makes, each joined to the host's by a veth pair of its own:
//
//   - a Prober, outside: 10.214.N.1, routed to the host's address through
//     the host's end 10.214.N.2, as any machine on the network would reach
//     the server;
//   - a Pod, behind the host: 10.215.N.2, its host-side link named cni0
//     (the bridge k3s gives its pods), so that the host can forward to it
//     as it forwards a NodePort's traffic to a pod.
//
// Listeners are sockets of the test process made inside those namespaces:
// no process is started, and they close when the test ends.

// Prober dials the host from a network namespace of its own.
type Prober struct {
	h  *Host
	ns string
}

// Prober makes the prober's namespace; it goes when the test ends.
func (h *Host) Prober(t testing.TB) *Prober {
	t.Helper()
	p := &Prober{h: h, ns: fmt.Sprintf("cbpr-%d", h.slot)}
	outer, inner := fmt.Sprintf("cbpr%dp", h.slot), fmt.Sprintf("cbpr%dh", h.slot)
	h.joinNamespace(t, p.ns, outer, inner, fmt.Sprintf("10.214.%d.1", h.slot), fmt.Sprintf("10.214.%d.2", h.slot))
	mustRun(t, "ip", "-n", p.ns, "route", "add", h.IP+"/32", "via", fmt.Sprintf("10.214.%d.2", h.slot))
	return p
}

// Answers tells whether a TCP connection to the host's port is accepted
// within timeout. A port that is closed is refused at once; a port the
// host's firewall drops times out.
func (p *Prober) Answers(port int, timeout time.Duration) bool {
	var c net.Conn
	err := inNetns(p.ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", net.JoinHostPort(p.h.IP, fmt.Sprint(port)), timeout)
		return err
	})
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Pod is a network namespace the host forwards to, as to a pod.
type Pod struct {
	IP string
	ns string
}

// Pod makes the pod's namespace, linked to the host through cni0, with its
// default route through the host; it goes when the test ends.
func (h *Host) Pod(t testing.TB) *Pod {
	t.Helper()
	p := &Pod{IP: fmt.Sprintf("10.215.%d.2", h.slot), ns: fmt.Sprintf("cbpod-%d", h.slot)}
	gw := fmt.Sprintf("10.215.%d.1", h.slot)
	h.joinNamespace(t, p.ns, fmt.Sprintf("cbpod%d", h.slot), "cni0", p.IP, gw)
	mustRun(t, "ip", "-n", p.ns, "route", "add", "default", "via", gw)
	return p
}

// Listen accepts connections on the pod's port until the test ends.
func (p *Pod) Listen(t testing.TB, port int) {
	t.Helper()
	listen(t, p.ns, net.JoinHostPort(p.IP, fmt.Sprint(port)))
}

// Listen accepts connections on addr (":80" for every address) in the
// host's network namespace until the test ends, as a server process on the
// host would.
func (h *Host) Listen(t testing.TB, addr string) {
	t.Helper()
	listen(t, h.Name, addr)
}

func listen(t testing.TB, ns, addr string) {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("sshhost: listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("sshhost listener\n"))
			_ = c.Close()
		}
	}()
}

// joinNamespace makes network namespace ns with a veth pair to the host's:
// outer (address outerIP/30) in ns, inner (innerIP/30) in the host's. Both
// go when the test ends (deleting ns deletes the pair), and any left by a
// test binary that died are removed first.
func (h *Host) joinNamespace(t testing.TB, ns, outer, inner, outerIP, innerIP string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_ = run(ctx, "ip", "netns", "del", ns)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = run(c, "ip", "netns", "del", ns)
	})
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", outer, "netns", ns, "type", "veth", "peer", "name", inner, "netns", h.Name},
		{"-n", ns, "addr", "add", outerIP + "/30", "dev", outer},
		{"-n", ns, "link", "set", outer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", h.Name, "addr", "add", innerIP + "/30", "dev", inner},
		{"-n", h.Name, "link", "set", inner, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			t.Fatalf("sshhost: network namespace %s: %v", ns, err)
		}
	}
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := run(ctx, name, args...); err != nil {
		t.Fatalf("sshhost: %v", err)
	}
}

// inNetns runs fn on an OS thread switched into the named network
// namespace: sockets fn makes belong to that namespace for good. The
// thread is switched back after; if that fails it is not reused (a
// goroutine that ends locked takes its thread with it).
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave network namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
