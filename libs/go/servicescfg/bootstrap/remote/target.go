package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// Target is the server install connects to.
type Target struct {
	Host string
	Port int
	User string
	// IdentityFiles are private key files to try (after the keys of the
	// ssh-agent). When none is given, the usual ~/.ssh/id_* files that
	// exist are tried.
	IdentityFiles []string
	// ProxyJump is the jump host ~/.ssh/config names for Host, if any.
	ProxyJump string
	// Jumps are the hosts of ProxyJump, in order, each resolved as a
	// target of its own (its HostName, Port, User and IdentityFile from
	// the SSH configuration): install connects to the first, then to each
	// next one through the previous, then to the server.
	Jumps []Target
}

// Addr is host:port.
func (t Target) Addr() string {
	return joinHostPort(t.Host, t.Port)
}

// Via names the jump hosts of t ("" when there are none), for messages.
func (t Target) Via() string {
	var hops []string
	for _, j := range t.Jumps {
		hops = append(hops, j.User+"@"+j.Addr())
	}
	return strings.Join(hops, ", ")
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// TargetSources are the places a target is read from, strongest first:
// Flags, then Config (values the operator set: config.env or the process
// environment, never a declared default), then the SSH client configuration
// for the host, then Defaults (the declared defaults of the stack's
// variables), then port 22 and CurrentUser. A weaker source never overrides
// a field a stronger one set, so a declared default never overrides what
// ~/.ssh/config says.
type TargetSources struct {
	Flags    Target
	Config   Target
	Defaults Target
	// SSHConfig is the text of ~/.ssh/config (nil when there is none);
	// SSHConfigPath names it in errors.
	SSHConfig     []byte
	SSHConfigPath string
	// Home expands "~" in identity files; CurrentUser is the last resort
	// for the user name.
	Home        string
	CurrentUser string
}

// ResolveTarget merges the sources into one target. The host alias the
// stronger sources give is looked up in the SSH configuration (HostName,
// Port, User, IdentityFile, ProxyJump), as ssh(1) would.
func ResolveTarget(src TargetSources) (Target, error) {
	var t Target
	merge(&t, src.Flags)
	merge(&t, src.Config)
	if t.Host == "" {
		return Target{}, errors.New("no server to install on: give its address (the host variable of spec.bootstrap.target, or --host)")
	}
	conf, err := decodeSSHConfig(src)
	if err != nil {
		return Target{}, err
	}
	if _, err := fromSSHConfig(src, conf, &t); err != nil {
		return Target{}, err
	}
	merge(&t, src.Defaults)
	finish(src, &t)
	if t.User == "" {
		return Target{}, errors.New("no SSH user: give one (the user variable of spec.bootstrap.target, or --user)")
	}
	if t.Port < 1 || t.Port > 65535 {
		return Target{}, fmt.Errorf("SSH port %d is out of range 1-65535", t.Port)
	}
	jumps, err := resolveJumps(src, conf, t)
	if err != nil {
		return Target{}, err
	}
	t.Jumps = jumps
	return t, nil
}

// resolveJumps turns ProxyJump ("[user@]host[:port]", comma-separated)
// into targets, each looked up in the SSH configuration as ssh(1) does.
func resolveJumps(src TargetSources, conf *ssh_config.Config, t Target) ([]Target, error) {
	if t.ProxyJump == "" {
		return nil, nil
	}
	var out []Target
	for _, hop := range strings.Split(t.ProxyJump, ",") {
		j, err := parseJump(strings.TrimSpace(hop))
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q of host %s: %w", t.ProxyJump, t.Host, err)
		}
		fromFile, err := fromSSHConfig(src, conf, &j)
		if err != nil {
			return nil, err
		}
		if fromFile.ProxyJump != "" {
			return nil, fmt.Errorf("%s: jump host %s has a ProxyJump of its own (%s), which install does not follow: list every hop in the ProxyJump of %s instead", src.SSHConfigPath, fromFile.alias, fromFile.ProxyJump, t.Host)
		}
		finish(src, &j)
		out = append(out, j)
	}
	return out, nil
}

// fromSSHConfig fills what t leaves empty from the SSH configuration's
// entry for its host, whose HostName then replaces the alias; it returns
// that entry (empty without a configuration).
func fromSSHConfig(src TargetSources, conf *ssh_config.Config, t *Target) (sshEntry, error) {
	if conf == nil {
		return sshEntry{}, nil
	}
	fromFile, err := sshConfigTarget(src, conf, t.Host)
	if err != nil {
		return sshEntry{}, err
	}
	merge(t, fromFile.Target) // the host stays: t has one
	if fromFile.Host != "" {
		t.Host = fromFile.Host
	}
	return fromFile, nil
}

// finish gives t the defaults of ssh(1) (port 22, the current user) and
// expands ~ in its identity files.
func finish(src TargetSources, t *Target) {
	merge(t, Target{Port: 22, User: src.CurrentUser})
	for i, f := range t.IdentityFiles {
		t.IdentityFiles[i] = expandHome(f, src.Home)
	}
}

// parseJump reads one hop of ProxyJump: [user@]host[:port], the host
// possibly in brackets (IPv6).
func parseJump(hop string) (Target, error) {
	var j Target
	if strings.Contains(hop, "://") {
		return Target{}, fmt.Errorf("hop %q: only [user@]host[:port] is supported", hop)
	}
	if at := strings.LastIndex(hop, "@"); at >= 0 {
		j.User, hop = hop[:at], hop[at+1:]
	}
	host, port := hop, ""
	if h, p, err := net.SplitHostPort(hop); err == nil {
		host, port = h, p
	}
	if host == "" {
		return Target{}, errors.New("a hop without a host")
	}
	j.Host = strings.Trim(host, "[]")
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return Target{}, fmt.Errorf("hop %q: port %q is not a number in 1-65535", hop, port)
		}
		j.Port = p
	}
	return j, nil
}

// merge fills the fields of t that are still empty from s.
func merge(t *Target, s Target) {
	if t.Host == "" {
		t.Host = s.Host
	}
	if t.Port == 0 {
		t.Port = s.Port
	}
	if t.User == "" {
		t.User = s.User
	}
	if len(t.IdentityFiles) == 0 && len(s.IdentityFiles) > 0 {
		t.IdentityFiles = append([]string(nil), s.IdentityFiles...)
	}
	if t.ProxyJump == "" {
		t.ProxyJump = s.ProxyJump
	}
}

// decodeSSHConfig parses the SSH configuration, nil when there is none.
func decodeSSHConfig(src TargetSources) (*ssh_config.Config, error) {
	if src.SSHConfig == nil {
		return nil, nil
	}
	cfg, err := ssh_config.Decode(bytes.NewReader(src.SSHConfig))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.SSHConfigPath, err)
	}
	return cfg, nil
}

// sshEntry is what the SSH configuration says about an alias. Its Host
// field is the HostName, when one is given.
type sshEntry struct {
	Target
	alias string
}

// sshConfigTarget reads what the SSH configuration cfg says about alias.
func sshConfigTarget(src TargetSources, cfg *ssh_config.Config, alias string) (sshEntry, error) {
	get := func(key string) (string, error) {
		v, err := cfg.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("read %s for host %s: %w", src.SSHConfigPath, alias, err)
		}
		return v, nil
	}
	var t Target
	var port string
	for _, kv := range []struct {
		key string
		dst *string
	}{{"HostName", &t.Host}, {"Port", &port}, {"User", &t.User}, {"ProxyJump", &t.ProxyJump}} {
		v, err := get(kv.key)
		if err != nil {
			return sshEntry{}, err
		}
		*kv.dst = v
	}
	if strings.EqualFold(t.ProxyJump, "none") {
		t.ProxyJump = ""
	}
	t.Host = strings.ReplaceAll(t.Host, "%h", alias)
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil {
			return sshEntry{}, fmt.Errorf("%s: host %s: Port %q is not a number", src.SSHConfigPath, alias, port)
		}
		t.Port = p
	}
	files, err := cfg.GetAll(alias, "IdentityFile")
	if err != nil {
		return sshEntry{}, fmt.Errorf("read %s for host %s: %w", src.SSHConfigPath, alias, err)
	}
	for _, f := range files {
		f = strings.NewReplacer("%d", src.Home, "%h", alias, "%%", "%").Replace(f)
		t.IdentityFiles = append(t.IdentityFiles, f)
	}
	return sshEntry{Target: t, alias: alias}, nil
}

func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

// DefaultIdentityFiles are the key files ssh(1) tries when none is named,
// those of them that exist under home.
func DefaultIdentityFiles(home string) []string {
	var out []string
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
