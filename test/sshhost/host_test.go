package sshhost

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dial(t *testing.T, h *Host, user string) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", h.Addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(h.ClientKey)},
		HostKeyCallback: ssh.FixedHostKey(h.HostKeys[0].PublicKey()),
		// x/crypto prefers ecdsa; the fixed key is ed25519.
		HostKeyAlgorithms: []string{h.HostKeys[0].PublicKey().Type()},
		Timeout:           5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", h.Addr, user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func output(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

func TestSmokeHost(t *testing.T) {
	h := Start(t)
	ctx := context.Background()

	root := dial(t, h, "root")
	if out, err := output(t, root, "id -u; hostname; cat /etc/debian_version"); err != nil || !strings.HasPrefix(out, "0\n"+h.Name+"\n12.") {
		t.Fatalf("root session: %q, %v", out, err)
	}
	if out, err := output(t, dial(t, h, UserSudo), "sudo -n id -u"); err != nil || out != "0\n" {
		t.Fatalf("%s with passwordless sudo: %q, %v", UserSudo, out, err)
	}
	if out, err := output(t, dial(t, h, UserNoSudo), "sudo -n true"); err == nil || !strings.Contains(out, "password is required") {
		t.Fatalf("%s without passwordless sudo: %q, %v", UserNoSudo, out, err)
	}

	// The host is its own PID namespace: sshd is PID 1 there.
	if out, err := h.Exec(ctx, "cat /proc/1/comm"); err != nil || out != "sshd\n" {
		t.Fatalf("PID 1 of the host: %q, %v", out, err)
	}
	if _, err := os.Stat(h.Path("/etc/ssh/sshd_config")); err != nil {
		t.Fatal(err)
	}
	// What is not the host's own stays this machine's: kernel-wide sysctls
	// are read-only, per-namespace ones are writable, no swap is seen; the
	// prepare-host step's packages are in the apt cache, not installed.
	checks := []struct{ script, want string }{
		{"sysctl -w fs.inotify.max_user_instances=4242 >/dev/null 2>&1 && echo changed || echo refused", "refused\n"},
		{"sysctl -w net.ipv4.ip_forward=1 >/dev/null && echo changed", "changed\n"},
		{"wc -c < /proc/swaps", "0\n"},
		{"dpkg-query -W -f='${Status}' nftables 2>/dev/null | grep -q 'ok installed' && echo installed || echo missing; ls /var/cache/apt/archives | grep -c '^nftables_'", "missing\n1\n"},
	}
	for _, c := range checks {
		if out, err := h.Exec(ctx, c.script); err != nil || out != c.want {
			t.Errorf("%s: %q, %v (want %q)", c.script, out, err, c.want)
		}
	}

	// A cut connection: the client sees its connection end.
	s, err := root.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	n, err := h.KillConnections()
	if err != nil || n == 0 {
		t.Fatalf("KillConnections: %d, %v", n, err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- s.Wait() }()
	select {
	case err := <-waitErr:
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("the session ended with an exit status after the cut: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after the cut")
	}
	if err := root.Wait(); err == nil || errors.Is(err, io.EOF) {
		t.Logf("connection ended: %v", err)
	}
}

func TestSmokeReplaceHostKeys(t *testing.T) {
	h := Start(t, WithHostKeyTypes("ed25519"))
	old := h.HostKeys[0].PublicKey()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.ReplaceHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if h.offers(old) {
		t.Fatal("the host still offers its old key")
	}
	dial(t, h, "root")
}

// TestSmokeCleanup checks that a stopped host leaves no network namespace,
// link or process behind.
func TestSmokeCleanup(t *testing.T) {
	var h *Host
	t.Run("host", func(t *testing.T) { h = Start(t) })
	if h == nil || t.Failed() {
		return
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), h.Name+" ") || strings.Contains(string(out), h.Name+"\n") {
		t.Errorf("network namespace %s left behind", h.Name)
	}
	hostIf, _ := h.links()
	if err := exec.Command("ip", "link", "show", hostIf).Run(); err == nil {
		t.Errorf("link %s left behind", hostIf)
	}
	if _, err := os.Stat("/proc/" + itoa(h.listener)); err == nil {
		t.Errorf("sshd (pid %d) left behind", h.listener)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSmokePorts: a listener on the host answers the prober, a closed port
// does not; the host reaches a pod through cni0; the namespaces go with
// the test.
func TestSmokePorts(t *testing.T) {
	var h *Host
	t.Run("host", func(t *testing.T) {
		h = Start(t)
		p := h.Prober(t)
		h.Listen(t, ":80")
		if !p.Answers(80, 2*time.Second) {
			t.Error("port 80 does not answer the prober")
		}
		if p.Answers(81, 2*time.Second) {
			t.Error("closed port 81 answers the prober")
		}
		pod := h.Pod(t)
		pod.Listen(t, 8080)
		out, err := h.Exec(context.Background(), "bash -c 'exec 3<>/dev/tcp/"+pod.IP+"/8080 && head -1 <&3'")
		if err != nil || out != "sshhost listener\n" {
			t.Errorf("the host does not reach the pod: %q, %v", out, err)
		}
	})
	if h == nil {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, ns := range []string{"cbpr-" + itoa(h.slot), "cbpod-" + itoa(h.slot)} {
		if strings.Contains(string(out), ns+" ") || strings.Contains(string(out), ns+"\n") {
			t.Errorf("network namespace %s left behind", ns)
		}
	}
}

// TestStepPackagesMatchPrepareHost: the root's apt cache holds what the
// platform's prepare-host installs (the test host has no internet).
func TestStepPackagesMatchPrepareHost(t *testing.T) {
	b, err := os.ReadFile("../../bootstrap/remote/00_prepare_host.sh")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "PACKAGES=("); ok {
			for _, p := range strings.Fields(strings.TrimSuffix(rest, ")")) {
				if p != "ca-certificates" { // part of the root
					pkgs = append(pkgs, p)
				}
			}
		}
	}
	if got := strings.Join(pkgs, " "); got != StepPackages {
		t.Errorf("prepare-host installs %q, the root caches %q: change StepPackages (and rootVersion)", got, StepPackages)
	}
}
