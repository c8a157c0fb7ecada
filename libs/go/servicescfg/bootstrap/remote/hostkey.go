package remote

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// UnknownHostKeyError: the server's key is not in known_hosts, and it was
// neither confirmed nor pinned.
type UnknownHostKeyError struct {
	Host        string
	KeyType     string
	Fingerprint string // SHA256:...
	// Declined is true when the operator was asked and said no.
	Declined bool
}

func (e *UnknownHostKeyError) Error() string {
	if e.Declined {
		return fmt.Sprintf("host key of %s (%s %s) was not accepted", e.Host, e.KeyType, e.Fingerprint)
	}
	return fmt.Sprintf("host key of %s is unknown (%s %s) and was neither confirmed nor pinned; check it on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)", e.Host, e.KeyType, e.Fingerprint)
}

// ChangedHostKeyError: known_hosts records other keys for the server. It
// is always refused.
type ChangedHostKeyError struct {
	Host        string
	KeyType     string
	Fingerprint string
	// Known are the recorded keys, each as "FILE:LINE TYPE SHA256:...".
	Known []string
	// File and Line locate the first recorded key.
	File string
	Line int
}

func (e *ChangedHostKeyError) Error() string {
	return fmt.Sprintf("host key of %s has CHANGED: it offers %s %s, but %s records %s; refusing to connect (someone may be intercepting the connection). If the server was reinstalled, remove line %d of %s (ssh-keygen -R %s) and try again",
		e.Host, e.KeyType, e.Fingerprint, fileLine(e.File, e.Line), strings.Join(e.Known, ", "), e.Line, e.File, e.Host)
}

// PinMismatchError: the key offered is not the pinned one.
type PinMismatchError struct {
	Host, Fingerprint, Pin string
}

func (e *PinMismatchError) Error() string {
	return fmt.Sprintf("host key of %s is %s, not the pinned %s: refusing to connect", e.Host, e.Fingerprint, e.Pin)
}

func fileLine(file string, line int) string { return fmt.Sprintf("%s:%d", file, line) }

// hostKeys checks server keys against a known_hosts file.
type hostKeys struct {
	file     string
	pin      string
	prompter Prompter
	db       ssh.HostKeyCallback
	// err is what the callback refused with, returned as is by Dial
	// rather than inside the handshake's own error.
	err error
}

// newHostKeys reads the known_hosts file, making it (and its folder) when
// it does not exist yet.
func newHostKeys(file, pin string, p Prompter) (*hostKeys, error) {
	if file == "" {
		return nil, errors.New("no known_hosts file given")
	}
	if pin != "" && !strings.HasPrefix(pin, "SHA256:") {
		return nil, fmt.Errorf("host key pin %q: want the SHA256 fingerprint as ssh-keygen -lf prints it (SHA256:...)", pin)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("make the folder of %s: %w", file, err)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	_ = f.Close()
	db, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return &hostKeys{file: file, pin: pin, prompter: p, db: db}, nil
}

// probeKey is a key no server has: checking it returns the host's
// recorded keys in a KeyError. Made on first use: every command of the
// binary would otherwise generate it when the program starts.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// known returns the keys recorded for addr (host:port).
func (h *hostKeys) known(addr string) []knownhosts.KnownKey {
	err := h.db(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey())
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// algorithms orders the host key algorithms so that the types already
// recorded for addr come first. Without it x/crypto negotiates its own
// favourite (ecdsa) and a host recorded with ed25519 looks changed
// (golang/go#49631). It returns nil (x/crypto's default) for an unknown host.
func (h *hostKeys) algorithms(addr string) []string {
	known := h.known(addr)
	if len(known) == 0 {
		return nil
	}
	var first []string
	seen := map[string]bool{}
	for _, k := range known {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				first = append(first, a)
			}
		}
	}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !seen[a] {
			seen[a] = true
			first = append(first, a)
		}
	}
	return first
}

// algorithmsFor maps a key type to the signature algorithms that use it.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// callback is the HostKeyCallback of one dial.
func (h *hostKeys) callback(ctx context.Context) ssh.HostKeyCallback {
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		h.err = h.check(ctx, addr, remote, key)
		return h.err
	}
}

func (h *hostKeys) check(ctx context.Context, addr string, remote net.Addr, key ssh.PublicKey) error {
	host := hostOf(addr)
	fp := ssh.FingerprintSHA256(key)
	if h.pin != "" && fp != h.pin {
		return &PinMismatchError{Host: host, Fingerprint: fp, Pin: h.pin}
	}
	err := h.db(addr, remote, key)
	var ke *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revoked):
		return fmt.Errorf("host key of %s (%s) is revoked in %s: refusing to connect", host, fp, revoked.Revoked.Filename)
	case errors.As(err, &ke) && len(ke.Want) > 0:
		return changed(host, key, ke.Want)
	case errors.As(err, &ke):
		return h.unknown(ctx, addr, key)
	default:
		return fmt.Errorf("check the host key of %s: %w", host, err)
	}
}

func changed(host string, key ssh.PublicKey, want []knownhosts.KnownKey) error {
	e := &ChangedHostKeyError{Host: host, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key),
		File: want[0].Filename, Line: want[0].Line}
	for _, k := range want {
		e.Known = append(e.Known, fmt.Sprintf("%s %s", k.Key.Type(), ssh.FingerprintSHA256(k.Key)))
	}
	return e
}

// unknown accepts a new key when it is pinned or the operator confirms it,
// and records it.
func (h *hostKeys) unknown(ctx context.Context, addr string, key ssh.PublicKey) error {
	host := hostOf(addr)
	fp := ssh.FingerprintSHA256(key)
	if h.pin == "" {
		if h.prompter == nil {
			return &UnknownHostKeyError{Host: host, KeyType: key.Type(), Fingerprint: fp}
		}
		ok, err := h.prompter.ConfirmHostKey(ctx, host, key.Type(), fp)
		if err != nil {
			return err
		}
		if !ok {
			return &UnknownHostKeyError{Host: host, KeyType: key.Type(), Fingerprint: fp, Declined: true}
		}
	}
	return h.record(addr, key)
}

// record appends the key to known_hosts as ssh(1) would write it.
func (h *hostKeys) record(addr string, key ssh.PublicKey) error {
	data, err := os.ReadFile(h.file)
	if err != nil {
		return fmt.Errorf("record the host key: %w", err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(h.file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record the host key in %s: %w", h.file, err)
	}
	if _, err := f.WriteString(line); err != nil {
		_ = f.Close()
		return fmt.Errorf("record the host key in %s: %w", h.file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("record the host key in %s: %w", h.file, err)
	}
	return nil
}

func hostOf(addr string) string {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if p == "22" {
			return h
		}
		return "[" + h + "]:" + p
	}
	return addr
}
