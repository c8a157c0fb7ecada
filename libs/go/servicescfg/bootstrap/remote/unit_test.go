package remote

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestDecide(t *testing.T) {
	names := []string{"a", "b", "c"}
	hashes := []string{"ha", "hb", "hc"}
	all := map[string]string{"a": "ha", "b": "hb", "c": "hc"}
	for _, tc := range []struct {
		name    string
		markers map[string]string
		sel     Selection
		want    string // r: runs, s: skipped
		err     string
	}{
		{name: "fresh host", markers: nil, want: "rrr"},
		{name: "all finished", markers: all, want: "sss"},
		{name: "failed in the middle", markers: map[string]string{"a": "ha"}, want: "srr"},
		{name: "changed in the middle", markers: map[string]string{"a": "ha", "b": "old", "c": "hc"}, want: "srr"},
		{name: "later marker, earlier missing", markers: map[string]string{"c": "hc"}, want: "rrr"},
		{name: "from", markers: all, sel: Selection{From: "b"}, want: "srr"},
		{name: "only", markers: nil, sel: Selection{Only: []string{"c", "a"}}, want: "rsr"},
		{name: "unknown from", sel: Selection{From: "x"}, err: `no bootstrap step "x"; the steps are: a, b, c`},
		{name: "unknown only", sel: Selection{Only: []string{"a", "x"}}, err: `no bootstrap step "x"`},
		{name: "both", sel: Selection{From: "a", Only: []string{"b"}}, err: "either from or only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(names, hashes, tc.markers, tc.sel)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, d := range got {
				if d.run {
					b.WriteByte('r')
					if d.reason != "" {
						t.Errorf("a running step has a skip reason %q", d.reason)
					}
				} else {
					b.WriteByte('s')
					if d.reason == "" {
						t.Error("a skipped step has no reason")
					}
				}
			}
			if b.String() != tc.want {
				t.Errorf("got %s, want %s", b.String(), tc.want)
			}
		})
	}
}

func TestResolveTarget(t *testing.T) {
	sshConfig := []byte(`Host web
  HostName 192.0.2.10
  Port 2222
  User deploy
  IdentityFile ~/.ssh/web_key
Host jump-*
  ProxyJump bastion
Host bastion
  HostName 198.51.100.1
  Port 2200
  User jumper
  IdentityFile ~/.ssh/bastion_key
Host chain
  ProxyJump ops@10.0.0.5:2022,[2001:db8::1]
Host loop
  ProxyJump jump-2
Host badhop
  ProxyJump b:99999
Host *
  User fallback
`)
	for _, tc := range []struct {
		name string
		src  TargetSources
		want Target
		err  string
	}{
		{name: "ssh config fills what flags and config leave",
			src:  TargetSources{Config: Target{Host: "web"}, SSHConfig: sshConfig, Defaults: Target{User: "root", Port: 22}, Home: "/home/op", CurrentUser: "op"},
			want: Target{Host: "192.0.2.10", Port: 2222, User: "deploy", IdentityFiles: []string{"/home/op/.ssh/web_key"}}},
		{name: "flags beat config beat ssh config",
			src:  TargetSources{Flags: Target{Port: 22022}, Config: Target{Host: "web", User: "admin", IdentityFiles: []string{"/k"}}, SSHConfig: sshConfig},
			want: Target{Host: "192.0.2.10", Port: 22022, User: "admin", IdentityFiles: []string{"/k"}}},
		{name: "declared defaults come after ssh config",
			src:  TargetSources{Config: Target{Host: "other"}, SSHConfig: sshConfig, Defaults: Target{User: "root"}, CurrentUser: "op"},
			want: Target{Host: "other", Port: 22, User: "fallback"}},
		{name: "no ssh config: defaults then current user",
			src:  TargetSources{Flags: Target{Host: "10.0.0.1"}, CurrentUser: "op"},
			want: Target{Host: "10.0.0.1", Port: 22, User: "op"}},
		{name: "proxy jump is read",
			src: TargetSources{Flags: Target{Host: "jump-1", User: "u"}, SSHConfig: sshConfig, Home: "/home/op"},
			want: Target{Host: "jump-1", Port: 22, User: "u", ProxyJump: "bastion",
				Jumps: []Target{{Host: "198.51.100.1", Port: 2200, User: "jumper", IdentityFiles: []string{"/home/op/.ssh/bastion_key"}}}}},
		{name: "proxy jump chain with users and ports",
			src: TargetSources{Flags: Target{Host: "chain"}, SSHConfig: sshConfig, CurrentUser: "op"},
			want: Target{Host: "chain", Port: 22, User: "fallback", ProxyJump: "ops@10.0.0.5:2022,[2001:db8::1]",
				Jumps: []Target{{Host: "10.0.0.5", Port: 2022, User: "ops"}, {Host: "2001:db8::1", Port: 22, User: "fallback"}}}},
		{name: "a jump host with a proxy jump of its own", src: TargetSources{Flags: Target{Host: "loop"}, SSHConfig: sshConfig, SSHConfigPath: "/home/op/.ssh/config"},
			err: "/home/op/.ssh/config: jump host jump-2 has a ProxyJump of its own (bastion)"},
		{name: "a jump host with a bad port", src: TargetSources{Flags: Target{Host: "badhop"}, SSHConfig: sshConfig}, err: `hop "b:99999": port "99999" is not a number in 1-65535`},
		{name: "no host", src: TargetSources{CurrentUser: "op"}, err: "no server to install on"},
		{name: "bad port", src: TargetSources{Flags: Target{Host: "h", Port: 70000}, CurrentUser: "op"}, err: "out of range"},
		{name: "bad port in ssh config", src: TargetSources{Flags: Target{Host: "h"}, SSHConfig: []byte("Host h\n  Port x\n"), SSHConfigPath: "/home/op/.ssh/config"}, err: `/home/op/.ssh/config: host h: Port "x" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveTarget(tc.src)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("want error %q, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.IdentityFiles, ",") != strings.Join(tc.want.IdentityFiles, ",") || got.Host != tc.want.Host ||
				got.Port != tc.want.Port || got.User != tc.want.User || got.ProxyJump != tc.want.ProxyJump ||
				fmt.Sprint(got.Jumps) != fmt.Sprint(tc.want.Jumps) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHostKeyAlgorithmsPreferRecordedTypes(t *testing.T) {
	ed := mustKey(t, "AAAAC3NzaC1lZDI1NTE5AAAAIBs2cW1o6I1R2MiOFeN02GS5aMN3s3HtVUyx6EHxLpzR")
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	lines := "example.test " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed))) + "\n"
	if err := os.WriteFile(kh, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := newHostKeys(kh, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := h.algorithms("example.test:22")
	if len(got) == 0 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("known ed25519 host: %v", got)
	}
	if h.algorithms("other.test:22") != nil {
		t.Error("an unknown host should keep x/crypto's default order")
	}
	if got := algorithmsFor(ssh.KeyAlgoRSA); got[0] != ssh.KeyAlgoRSASHA512 {
		t.Errorf("rsa: %v", got)
	}
	if _, err := newHostKeys(kh, "MD5:aa", nil); err == nil {
		t.Error("a pin that is not SHA256 was accepted")
	}
}

func mustKey(t *testing.T, b64 string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 " + b64))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestStepOutputPrefixesLinesAndMasksSecrets(t *testing.T) {
	var out, errOut bytes.Buffer
	s := Step{Name: "k3s", Vars: []Var{{Name: "T", Value: "s3cr3t", Secret: true}, {Name: "D", Value: "visible"}}}
	o := newStepOutput(s, RunOptions{Stdout: &out, Stderr: &errOut})
	_, _ = o.stdout.Write([]byte("one s3cr3t\ntw"))
	_, _ = o.stderr.Write([]byte("err visible\n"))
	_, _ = o.stdout.Write([]byte("o\r\nthree"))
	o.flush()
	if got, want := out.String(), "[k3s] one ***\n[k3s] two\n[k3s] three\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got, want := errOut.String(), "[k3s] err visible\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if got := strings.Join(o.last(), "|"); got != "one ***|err visible|two|three" {
		t.Errorf("last lines %q", got)
	}
}

func TestCheckSteps(t *testing.T) {
	for _, tc := range []struct {
		project string
		steps   []Step
		err     string
	}{
		{"p", []Step{{Name: "ok"}}, ""},
		{"../p", nil, "project name"},
		{"p", []Step{{Name: "a/b"}}, "step name"},
		{"p", []Step{{Name: "a"}, {Name: "a"}}, "declared twice"},
		{"p", []Step{{Name: "a", Vars: []Var{{Name: "A-B"}}}}, "not a shell name"},
		{"p", []Step{{Name: "a", Files: []File{{Name: "../x"}}}}, "clean relative path"},
		{"p", []Step{{Name: "a", Files: []File{{Name: "/x"}}}}, "clean relative path"},
	} {
		err := checkSteps(tc.project, tc.steps)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s %+v: got %v, want %q", tc.project, tc.steps, err, tc.err)
		}
	}
}

func TestVarsBlockQuotes(t *testing.T) {
	got := string(varsBlock([]Var{{Name: "A", Value: "it's $x\nnext"}}))
	if want := "A='it'\\''s $x\nnext'\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
