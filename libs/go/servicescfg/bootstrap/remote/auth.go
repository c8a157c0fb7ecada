package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Prompter asks the operator. The library never prompts itself: the CLI
// gives one on a terminal and nil otherwise.
type Prompter interface {
	// ConfirmHostKey asks whether to trust an unknown host key.
	ConfirmHostKey(ctx context.Context, host, keyType, fingerprint string) (bool, error)
	// Passphrase asks for the passphrase of an encrypted key file.
	Passphrase(ctx context.Context, keyFile string) ([]byte, error)
}

const passphraseTries = 3

// keyring holds the keys of one Dial: the agent's, read once over one
// connection kept until the Dial ends, and each identity file loaded once,
// so that a ProxyJump hop and the server offering the same encrypted key
// ask its passphrase once.
type keyring struct {
	ctx        context.Context
	agentConn  net.Conn
	agentKeys  []ssh.Signer
	agentTried bool
	files      map[string]ssh.Signer
}

func newKeyring(ctx context.Context) *keyring {
	return &keyring{ctx: ctx, files: map[string]ssh.Signer{}}
}

// close ends the agent connection.
func (k *keyring) close() {
	if k.agentConn != nil {
		_ = k.agentConn.Close()
	}
}

// signers collects the keys to offer to cfg.Target: the agent's, then the
// key files'. Encrypted key files are offered by their public half and
// decrypted (the passphrase asked) only when a server accepts that key.
func (k *keyring) signers(cfg Config) ([]ssh.Signer, error) {
	if !k.agentTried && cfg.AgentSocket != "" {
		k.agentTried = true
		conn, err := net.Dial("unix", cfg.AgentSocket)
		if err == nil {
			k.agentConn = conn
			if s, err := agent.NewClient(conn).Signers(); err == nil {
				k.agentKeys = s
			}
		}
		// An agent that cannot be reached is not an error: the key
		// files may do, and an authentication failure says what was tried.
	}
	list := slices.Clone(k.agentKeys)
	files := cfg.Target.IdentityFiles
	explicit := len(files) > 0
	if !explicit {
		files = DefaultIdentityFiles(cfg.Home)
	}
	for _, f := range files {
		s, ok := k.files[f]
		if !ok {
			var err error
			if s, err = loadKey(k.ctx, f, cfg.Prompter); err != nil {
				if !explicit && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return nil, err
			}
			k.files[f] = s
		}
		list = append(list, s)
	}
	return list, nil
}

func loadKey(ctx context.Context, file string, p Prompter) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &missing) && missing.PublicKey != nil:
		return &encryptedKey{ctx: ctx, file: file, data: data, pub: missing.PublicKey, prompter: p}, nil
	case errors.As(err, &missing):
		// An old PEM key hides its public half: decrypt it now.
		k := &encryptedKey{ctx: ctx, file: file, data: data, prompter: p}
		if err := k.decrypt(); err != nil {
			return nil, err
		}
		return k.signer, nil
	default:
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
}

// encryptedKey is a passphrase-protected key decrypted on first use. It
// keeps the context of the Dial it belongs to because ssh.Signer's methods
// take none, and the passphrase question must end with the dial.
type encryptedKey struct {
	ctx      context.Context
	file     string
	data     []byte
	pub      ssh.PublicKey
	prompter Prompter

	once   sync.Once
	signer ssh.Signer
	err    error
}

func (k *encryptedKey) PublicKey() ssh.PublicKey { return k.pub }

func (k *encryptedKey) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	if err := k.load(); err != nil {
		return nil, err
	}
	return k.signer.Sign(r, data)
}

// SignWithAlgorithm lets RSA keys sign with rsa-sha2-*.
func (k *encryptedKey) SignWithAlgorithm(r io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if err := k.load(); err != nil {
		return nil, err
	}
	if as, ok := k.signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(r, data, algorithm)
	}
	return k.signer.Sign(r, data)
}

func (k *encryptedKey) Algorithms() []string {
	return algorithmsFor(k.pub.Type())
}

func (k *encryptedKey) load() error {
	k.once.Do(func() { k.err = k.decrypt() })
	return k.err
}

func (k *encryptedKey) decrypt() error {
	if k.prompter == nil {
		return fmt.Errorf("identity file %s is encrypted and there is no terminal to ask its passphrase: add it to ssh-agent (ssh-add %s) or run on a terminal", k.file, k.file)
	}
	var err error
	for i := 0; i < passphraseTries; i++ {
		var pass []byte
		pass, err = k.prompter.Passphrase(k.ctx, k.file)
		if err != nil {
			return err
		}
		k.signer, err = ssh.ParsePrivateKeyWithPassphrase(k.data, pass)
		clear(pass)
		if err == nil {
			if k.pub == nil {
				k.pub = k.signer.PublicKey()
			}
			return nil
		}
	}
	return fmt.Errorf("identity file %s: wrong passphrase %d times: %w", k.file, passphraseTries, err)
}
