package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

const (
	benchSteps     = 6
	benchStepSleep = 300 * time.Millisecond
	benchFileSize  = 32 << 20
)

// benchStack writes a stack of benchSteps steps, each sleeping
// benchStepSleep, the first uploading a benchFileSize file.
func benchStack(b *testing.B, h *sshhost.Host) string {
	b.Helper()
	dir := b.TempDir()
	blob := make([]byte, benchFileSize)
	_, _ = rand.Read(blob)
	var steps strings.Builder
	for i := 0; i < benchSteps; i++ {
		name := fmt.Sprintf("step-%d", i)
		script := fmt.Sprintf("s%d.sh", i)
		if err := os.WriteFile(filepath.Join(dir, script), []byte(fmt.Sprintf("set -e\nsleep %.3f\n", benchStepSleep.Seconds())), 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&steps, "      - name: %s\n        script: %s\n        env: [B_TOKEN]\n", name, script)
		if i == 0 {
			steps.WriteString("        files: [blob.bin]\n")
		}
	}
	files := map[string]string{
		"blob.bin":   string(blob),
		"m.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: '{{ .Namespace }}'}\n",
		"config.env": fmt.Sprintf("B_HOST=%s\nB_KEY=%s\nB_TOKEN=secret-value\n", h.IP, h.ClientKeyFile),
		"services.yaml": `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: bench}
spec:
  project: bench
  environments:
    dev: {runtime: non-prod, namespaceTemplate: bench-dev}
  services:
    - {name: x, manifests: [m.yaml]}
  bootstrap:
    configFile: config.env
    target: {host: B_HOST, identityFile: B_KEY}
    variables:
      - {name: B_HOST, required: true}
      - {name: B_KEY}
      - {name: B_TOKEN, secret: true}
    steps:
` + steps.String(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return filepath.Join(dir, "services.yaml")
}

// uploadBaseline is the time one SSH session takes to stream n bytes to
// the host (cat > /dev/null): the floor of any upload of that much.
func uploadBaseline(b *testing.B, h *sshhost.Host, blob string) time.Duration {
	b.Helper()
	c, err := ssh.Dial("tcp", h.Addr, &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(h.ClientKey)},
		HostKeyCallback:   ssh.FixedHostKey(h.HostKeys[0].PublicKey()),
		HostKeyAlgorithms: []string{h.HostKeys[0].PublicKey().Type()},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	f, err := os.Open(blob)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s.Stdin = f
	start := time.Now()
	if err := s.Run("cat > /dev/null"); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkInstallOverhead measures what install adds to its steps: the
// wall time of `install --no-deploy` running every step (--from the first)
// less the steps' own run time (benchSteps x benchStepSleep) and less the
// time the upload alone takes over SSH; and the SSH connections it opens.
//
//	go test ./internal/cli -run '^$' -bench InstallOverhead -benchtime 5x
func BenchmarkInstallOverhead(b *testing.B) {
	h := sshhost.Start(b)
	stack := benchStack(b, h)
	home := b.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(h.KnownHostsLine()+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	blob := filepath.Join(filepath.Dir(stack), "blob.bin")
	var conns atomic.Int64
	dialer := &net.Dialer{}
	env := map[string]string{"HOME": home, "USER": "root"}
	run := func() (time.Duration, error) {
		var out, errOut bytes.Buffer
		f := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		cmd := NewCmdInstall(f, func() string { return stack }, func(ctx context.Context, o *InstallOptions) error {
			o.DialContext = func(ctx context.Context, n, a string) (net.Conn, error) {
				conns.Add(1)
				return dialer.DialContext(ctx, n, a)
			}
			return runInstall(ctx, o)
		})
		cmd.SetArgs([]string{"--no-deploy", "--from", "step-0"})
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		start := time.Now()
		err := cmd.ExecuteContext(context.Background())
		if err != nil {
			return 0, fmt.Errorf("%w\n%s", err, errOut.String())
		}
		return time.Since(start), nil
	}
	if _, err := run(); err != nil { // warm: known host, runner installed
		b.Fatal(err)
	}
	conns.Store(0)
	own := time.Duration(benchSteps) * benchStepSleep
	var total, upload time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := run()
		if err != nil {
			b.Fatal(err)
		}
		total += d
		b.StopTimer()
		upload += uploadBaseline(b, h, blob)
		b.StartTimer()
	}
	b.StopTimer()
	mean := total / time.Duration(b.N)
	upload /= time.Duration(b.N)
	b.ReportMetric(float64(conns.Load())/float64(b.N), "ssh-conns/op")
	b.ReportMetric((mean - own - upload).Seconds(), "overhead-s/op")
	b.ReportMetric(upload.Seconds(), "upload-s")
	b.ReportMetric(own.Seconds(), "steps-s")
}
