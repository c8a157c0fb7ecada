package remote_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
)

// passphrase answers key passphrase questions from a list.
type passphrase struct {
	answers []string
	asked   int
}

func (p *passphrase) ConfirmHostKey(context.Context, string, string, string) (bool, error) {
	return false, nil
}

func (p *passphrase) Passphrase(_ context.Context, file string) ([]byte, error) {
	p.asked++
	a := p.answers[0]
	p.answers = p.answers[1:]
	return []byte(a), nil
}

// authorize adds a new key to root's authorized_keys on the host and
// returns it.
func authorize(t *testing.T, e *env) (ed25519.PrivateKey, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(e.h.Path("/root/.ssh/authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(signer.PublicKey())); err != nil {
		t.Fatal(err)
	}
	return priv, signer.PublicKey()
}

func TestEncryptedKeyFile(t *testing.T) {
	e := newEnv(t)
	priv, _ := authorize(t, e)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_enc")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config("root")
	cfg.Target.IdentityFiles = []string{key}

	if _, err := remote.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "is encrypted and there is no terminal") {
		t.Fatalf("without a terminal: %v", err)
	}
	p := &passphrase{answers: []string{"wrong", "right"}}
	cfg.Prompter = p
	c, err := remote.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if p.asked != 2 {
		t.Errorf("asked %d times, want 2", p.asked)
	}
	// A key the server does not take is never decrypted.
	cfg.Target.IdentityFiles = []string{e.h.ClientKeyFile, key}
	p = &passphrase{}
	cfg.Prompter = p
	if c, err := remote.Dial(context.Background(), cfg); err != nil {
		t.Fatal(err)
	} else {
		_ = c.Close()
	}
	if p.asked != 0 {
		t.Errorf("asked for a passphrase although the first key was enough")
	}
	// Through a jump host that takes the same key: asked once.
	cfg.Target.IdentityFiles = []string{key}
	cfg.Target.Jumps = []remote.Target{{Host: e.h.IP, Port: 22, User: "root", IdentityFiles: []string{key}}}
	p = &passphrase{answers: []string{"right"}}
	cfg.Prompter = p
	c, err = remote.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if p.asked != 1 {
		t.Errorf("through a jump host, asked %d times, want 1", p.asked)
	}
}

func TestAgentKeys(t *testing.T) {
	e := newEnv(t)
	priv, _ := authorize(t, e)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = agent.ServeAgent(keyring, conn)
			}()
		}
	}()
	cfg := e.config("root")
	cfg.Target.IdentityFiles = nil
	cfg.Home = t.TempDir() // no default key files there
	cfg.AgentSocket = sock
	c, err := remote.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	cfg.AgentSocket = ""
	if _, err := remote.Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "accepted none of the 0 keys") {
		t.Errorf("without keys: %v", err)
	}
}
