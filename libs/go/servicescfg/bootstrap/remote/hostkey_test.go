package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

// answer is a Prompter that answers host key questions with yes or no and
// counts them.
type answer struct {
	yes   bool
	asked []string
}

func (a *answer) ConfirmHostKey(_ context.Context, host, keyType, fp string) (bool, error) {
	a.asked = append(a.asked, host+" "+keyType+" "+fp)
	return a.yes, nil
}

func (a *answer) Passphrase(context.Context, string) ([]byte, error) {
	return nil, errors.New("no passphrase here")
}

// hostKeyDial dials h as root with a known_hosts file, a pin and a prompter.
func hostKeyDial(h *sshhost.Host, kh, pin string, p remote.Prompter) error {
	cfg := remote.Config{
		Target:     remote.Target{Host: h.IP, Port: 22, User: "root", IdentityFiles: []string{h.ClientKeyFile}},
		KnownHosts: kh, HostKeyPin: pin, Prompter: p,
	}
	c, err := remote.Dial(context.Background(), cfg)
	if err == nil {
		_ = c.Close()
	}
	return err
}

// newKnownHosts writes a known_hosts file (in a folder not made yet when
// content is empty).
func newKnownHosts(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	if content != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHostKeys(t *testing.T) {
	h := sshhost.Start(t)
	dial := func(kh, pin string, p remote.Prompter) error { return hostKeyDial(h, kh, pin, p) }
	read := readFile
	t.Run("unknown key without a terminal or pin is refused", func(t *testing.T) {
		kh := newKnownHosts(t, "")
		err := dial(kh, "", nil)
		var ue *remote.UnknownHostKeyError
		if !errors.As(err, &ue) || ue.Declined {
			t.Fatalf("want an unknown key error, got %v", err)
		}
		// x/crypto's own preference picks ecdsa for an unknown host.
		if !strings.Contains(err.Error(), "SHA256:") || !strings.Contains(err.Error(), h.IP) {
			t.Errorf("error lacks the host or fingerprint: %v", err)
		}
		if got := read(t, kh); got != "" {
			t.Errorf("known_hosts changed: %q", got)
		}
	})
	t.Run("unknown key declined on the terminal is refused", func(t *testing.T) {
		kh := newKnownHosts(t, "")
		a := &answer{}
		err := dial(kh, "", a)
		var ue *remote.UnknownHostKeyError
		if !errors.As(err, &ue) || !ue.Declined || len(a.asked) != 1 {
			t.Fatalf("want a declined key after one question, got %v (asked %v)", err, a.asked)
		}
		if got := read(t, kh); got != "" {
			t.Errorf("known_hosts changed: %q", got)
		}
	})
	t.Run("unknown key confirmed is recorded", func(t *testing.T) {
		kh := newKnownHosts(t, "")
		a := &answer{yes: true}
		if err := dial(kh, "", a); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(read(t, kh), h.IP+" ") {
			t.Errorf("known_hosts: %q", read(t, kh))
		}
		// Known now: no question the second time.
		if err := dial(kh, "", a); err != nil || len(a.asked) != 1 {
			t.Fatalf("second dial: %v, asked %v", err, a.asked)
		}
	})
}

func TestHostKeysPinnedAndChanged(t *testing.T) {
	h := sshhost.Start(t)
	fp := func(i int) string { return ssh.FingerprintSHA256(h.HostKeys[i].PublicKey()) }
	dial := func(kh, pin string, p remote.Prompter) error { return hostKeyDial(h, kh, pin, p) }
	read := readFile
	t.Run("pinned key is accepted and recorded, another pin refused", func(t *testing.T) {
		kh := newKnownHosts(t, "# keep this comment\n")
		// Unknown host: x/crypto negotiates ecdsa first (index 1).
		err := dial(kh, fp(0), nil)
		var pe *remote.PinMismatchError
		if !errors.As(err, &pe) || pe.Fingerprint != fp(1) {
			t.Fatalf("want a pin mismatch naming the ecdsa key, got %v", err)
		}
		if err := dial(kh, fp(1), nil); err != nil {
			t.Fatal(err)
		}
		got := read(t, kh)
		if !strings.HasPrefix(got, "# keep this comment\n"+h.IP+" ecdsa-sha2-nistp256 ") {
			t.Errorf("known_hosts: %q", got)
		}
		if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts mode %v", st.Mode())
		}
	})
	t.Run("recorded ed25519 is negotiated though the server offers ecdsa too", func(t *testing.T) {
		// golang/go#49631: without ordering, x/crypto picks ecdsa and
		// would call the recorded ed25519 host changed.
		kh := newKnownHosts(t, h.KnownHostsLine()+"\n")
		if err := dial(kh, "", nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("changed key is refused, naming the known_hosts line", func(t *testing.T) {
		other := sshhost.Start(t, sshhost.WithHostKeyTypes("ed25519"))
		line := strings.Replace(other.KnownHostsLine(), other.IP, h.IP, 1)
		kh := newKnownHosts(t, "# first line\n"+line+"\n")
		err := dial(kh, "", &answer{yes: true})
		var ce *remote.ChangedHostKeyError
		if !errors.As(err, &ce) {
			t.Fatalf("want a changed key error, got %v", err)
		}
		for _, want := range []string{kh + ":2", fp(0), "ssh-keygen -R " + h.IP, "CHANGED"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
		// Even a pin of the new key does not override the record.
		if err := dial(kh, fp(0), nil); !errors.As(err, &ce) {
			t.Errorf("a pin overrode a changed key: %v", err)
		}
	})
}

func TestReinstalledHostIsRefused(t *testing.T) {
	e := newEnv(t)
	c := e.dial(t, "root")
	_ = c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.h.ReplaceHostKeys(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := remote.Dial(context.Background(), e.config("root"))
	var ce *remote.ChangedHostKeyError
	if !errors.As(err, &ce) || ce.Line != 1 || ce.File != e.knownHosts {
		t.Fatalf("want a changed key at %s:1, got %v", e.knownHosts, err)
	}
	t.Log(fmt.Sprint(err))
}
