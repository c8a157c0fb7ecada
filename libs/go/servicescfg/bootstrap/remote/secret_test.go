package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

// A canary secret goes to steps; it must never show in install's output,
// its events, its errors, the files kept on the host, or the host's process
// list (arguments and environments) while a step runs.
func TestSecretsStayOutOfOutputFilesAndProcesses(t *testing.T) {
	e := newEnv(t)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	canary := "canary-" + hex.EncodeToString(b)
	secret := remote.Var{Name: "API_TOKEN", Value: canary, Secret: true}
	steps := []remote.Step{
		step("use-secret", `test -n "$API_TOKEN"
printf '%s' "$API_TOKEN" | sha256sum > /root/token.sha256
echo "token is $API_TOKEN"
echo "to stderr: $API_TOKEN" >&2
echo waiting
sleep 3
( sleep 1 )
env > /root/step-env.txt`, secret),
		step("fail-with-secret", `echo "bad token $API_TOKEN"; exit 4`, secret),
	}
	rec := newRecorder()
	c := e.dial(t, sshhost.UserSudo)
	errc := make(chan error, 1)
	go func() {
		_, err := remote.Run(context.Background(), c, steps, rec.options(remote.Selection{}))
		errc <- err
	}()
	rec.waitLine(t, "[use-secret] waiting")
	scans := 0
	for done := false; !done; {
		select {
		case err := <-errc:
			errc <- err
			done = true
		default:
			scanProcesses(t, e.h, canary)
			scans++
		}
	}
	err := <-errc
	var se *remote.StepError
	if !errors.As(err, &se) || se.Step != "fail-with-secret" || se.ExitCode != 4 {
		t.Fatalf("want fail-with-secret to fail with 4, got %v", err)
	}
	t.Logf("scanned the host's processes %d times during the step", scans)

	for name, text := range map[string]string{
		"stdout": rec.stdout.String(), "stderr": rec.stderr.String(),
		"events": rec.events.String(), "error": err.Error(),
	} {
		if strings.Contains(text, canary) {
			t.Errorf("the secret shows in %s:\n%s", name, text)
		}
	}
	for _, want := range []string{"[use-secret] token is ***"} {
		if !strings.Contains(rec.stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, rec.stdout.String())
		}
	}
	if !strings.Contains(err.Error(), "bad token ***") {
		t.Errorf("error: %v", err)
	}
	// The step had it: its hash is on the host, and it was not exported.
	sum := hostFile(t, e.h, "/root/token.sha256")
	if !strings.HasPrefix(sum, sha256hex(canary)) {
		t.Errorf("the step did not get the secret: %q", sum)
	}
	if strings.Contains(hostFile(t, e.h, "/root/step-env.txt"), "API_TOKEN") {
		t.Error("the secret was exported to the step's children")
	}
	scanFiles(t, e.h.Upper(), canary)
}

func sha256hex(s string) string {
	out, err := runLocal("sh", "-c", fmt.Sprintf("printf '%%s' '%s' | sha256sum", s))
	if err != nil {
		return err.Error()
	}
	return strings.Fields(out)[0]
}

// scanProcesses looks for the secret in every process of the host: its
// arguments and its environment.
func scanProcesses(t *testing.T, h *sshhost.Host, secret string) {
	t.Helper()
	procs, err := h.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if strings.Contains(p.Cmdline, secret) {
			t.Fatalf("the secret is in the arguments of %d: %s", p.PID, p.Cmdline)
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID))
		if bytes.Contains(env, []byte(secret)) {
			t.Fatalf("the secret is in the environment of %d (%s)", p.PID, p.Cmdline)
		}
	}
}

// scanFiles looks for the secret in every file the host wrote.
func scanFiles(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret is in the host's file %s", strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no host file scanned")
	}
}
