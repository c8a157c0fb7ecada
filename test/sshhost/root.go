package sshhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// rootVersion names the cached root; bump it when buildRoot changes what
// the root holds, so that an old cache is not reused.
const rootVersion = "bookworm-v2"

// Packages debootstrap adds to minbase: an SSH server, sudo for the
// non-root users, TLS roots, ip and ps for the tests that look inside.
const rootPackages = "openssh-server,sudo,ca-certificates,iproute2,procps"

// StepPackages are the packages the platform's prepare-host step installs
// (bootstrap/remote/00_prepare_host.sh). The host has no internet: their
// .deb files and the package lists are kept in the root's apt cache, not
// installed, so that the step's own apt-get installs them offline.
const StepPackages = "curl iptables nftables conntrack socat"

const (
	defaultMirror = "http://deb.debian.org/debian"
	buildTimeout  = 15 * time.Minute
)

// CacheDir is where the Debian root is kept: $CODEX_CACHE_DIR/sshhost,
// by default ~/.cache/codex-bootstrap/sshhost (the cache of the cluster
// harness, next to its cluster folder).
func CacheDir() (string, error) {
	if d := os.Getenv("CODEX_CACHE_DIR"); d != "" {
		return filepath.Join(d, "sshhost"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the cache folder: %w", err)
	}
	return filepath.Join(home, ".cache", "codex-bootstrap", "sshhost"), nil
}

// Root returns the cached clean Debian bookworm root, building it with
// debootstrap when it is missing (about a minute, from the Debian mirror
// of $CODEX_DEBIAN_MIRROR or deb.debian.org). Test binaries running at the
// same time wait for one another on a file lock; a half-built root is never
// used (it is built aside and renamed when complete).
func Root(ctx context.Context) (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(dir, rootVersion)
	if complete(root) {
		removeStaleRoots(dir)
		return root, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, rootVersion+".lock"))
	if err != nil {
		return "", fmt.Errorf("lock the root cache: %w", err)
	}
	defer unlock()
	if complete(root) {
		return root, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap is not installed: apt-get install debootstrap (.ci/run installs it)")
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := buildRoot(ctx, tmp); err != nil {
		return "", err
	}
	_ = os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		return "", fmt.Errorf("keep the built root: %w", err)
	}
	removeStaleRoots(dir)
	return root, nil
}

// removeStaleRoots deletes the roots of earlier rootVersions (a few hundred
// MB each) once the current one is there; they are never used again.
func removeStaleRoots(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	family, _, _ := strings.Cut(rootVersion, "-v")
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".lock")
		if strings.HasPrefix(name, family+"-v") && name != rootVersion && name != rootVersion+".tmp" {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

func complete(root string) bool {
	_, err := os.Stat(filepath.Join(root, ".sshhost-complete"))
	return err == nil
}

// buildRoot runs debootstrap, then prepares what every test host shares:
// the users and sudo rules. Per-host files (keys) are written at Start.
func buildRoot(ctx context.Context, root string) error {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	mirror := os.Getenv("CODEX_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = defaultMirror
	}
	if err := run(ctx, "debootstrap", "--variant=minbase", "--include="+rootPackages, "bookworm", root, mirror); err != nil {
		return fmt.Errorf("build the Debian root: %w", err)
	}
	// UsePAM is off in the test sshd: a locked password ("!") would then
	// refuse key logins too, so the users get "*" (no password, not locked).
	setup := strings.Join([]string{
		"set -e",
		"useradd --create-home --shell /bin/bash " + UserSudo,
		"useradd --create-home --shell /bin/bash --groups sudo " + UserNoSudo,
		"usermod -p '*' " + UserSudo,
		"usermod -p '*' " + UserNoSudo,
		"echo '" + UserSudo + " ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/" + UserSudo,
		"chmod 0440 /etc/sudoers.d/" + UserSudo,
		"rm -f /etc/ssh/ssh_host_*",
		"apt-get clean",
		"apt-get update -q",
		"DEBIAN_FRONTEND=noninteractive apt-get install -q -y --download-only --no-install-recommends " + StepPackages,
		"touch /.sshhost-complete",
	}, "\n")
	if err := run(ctx, "chroot", root, "/bin/sh", "-c", setup); err != nil {
		return fmt.Errorf("prepare the Debian root: %w", err)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, tail(out, 20))
	}
	return nil
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockFile takes an exclusive flock(2) on path, waiting until ctx is done.
// The lock goes with the process: a test binary that dies releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	unlock, ok, err := tryLock(path)
	if err != nil || ok {
		return unlock, err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if unlock, ok, err := tryLock(path); err != nil || ok {
			return unlock, err
		}
	}
}

// tryLock takes the lock on path if it is free.
func tryLock(path string) (unlock func(), ok bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		_ = f.Close()
		return nil, false, nil
	}
	if err != nil {
		_ = f.Close()
		return nil, false, err
	}
	return func() { _ = f.Close() }, true, nil
}
