package cli

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
	"github.com/codex-k8s/codex-bootstrap/test/sshhost"
)

// forward accepts connections on the test's end of the host's veth pair and
// relays them to addr (the cluster's API server on this machine's
// loopback): from inside the host, it is where its cluster answers. It
// counts the connections it relayed.
func forward(t *testing.T, listen, addr string) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(listen, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int64
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().String(), &n
}

// TestInstallDeploysThroughTheSSHConnection: after the steps, install reads
// the kubeconfig the cluster step left on the server and reconciles the
// environment with client-go dialling through the SSH connection: the API
// is reached from the server's side, nothing listens on this machine for it.
func TestInstallDeploysThroughTheSSHConnection(t *testing.T) {
	env := clustertest.New(t)
	h := sshhost.Start(t)
	stack := installStack(t, hostConfig(h, "root")+"DEMO_NAMESPACE="+env.Namespace+"\n")
	relay, relayed := writeRelayedKubeconfig(t, h, env, filepath.Join(filepath.Dir(stack), "cluster", "kubeconfig"))

	r := newInstallRun(t)
	r.trust(t, h)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	out := filepath.Join(t.TempDir(), "kubeconfig")
	code, stdout, stderr := r.run(context.Background(), "install", "--config", stack, "--env", "dev", "--events", events, "--kubeconfig-out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the environment was not deployed: %v", err)
	}
	if cm.Data["domain"] != "demo.example" {
		t.Errorf("configmap data %v", cm.Data)
	}
	if relayed.Load() == 0 {
		t.Error("the API was not reached from the server's side")
	}
	got := strings.Join(eventStatuses(t, events), " ")
	if !strings.HasPrefix(got, "prepare-host:started prepare-host:ready use-token:started use-token:ready cluster:started cluster:ready web:started") || !strings.HasSuffix(got, "web:ready") {
		t.Errorf("events: %s", got)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("--kubeconfig-out: %v %v", st, err)
	}
	written, err := clientcmd.LoadFromFile(out)
	if err != nil {
		t.Fatal(err)
	}
	port := strings.Split(relay, ":")[1]
	for _, c := range written.Clusters {
		if c.Server != "https://127.0.0.1:"+port {
			t.Errorf("--kubeconfig-out server %s", c.Server)
		}
	}
	if !strings.Contains(stdout, "ssh -N -L "+port+":127.0.0.1:"+port+" root@"+h.IP) {
		t.Errorf("stdout lacks the ssh -L line:\n%s", stdout)
	}

	// reconcile --ssh deploys to the installed server again, the same way.
	if err := env.Client.CoreV1().ConfigMaps(env.Namespace).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	before := relayed.Load()
	code, stdout, stderr = r.run(context.Background(), "reconcile", "--config", stack, "--env", "dev", "--ssh", h.IP)
	if code != 0 {
		t.Fatalf("reconcile --ssh: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if _, err := env.Client.CoreV1().ConfigMaps(env.Namespace).Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Errorf("reconcile --ssh did not deploy: %v", err)
	}
	if relayed.Load() == before {
		t.Error("reconcile --ssh did not reach the API from the server's side")
	}
}
