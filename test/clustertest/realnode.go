package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// RealNodeName is the node of the shared cluster that runs real
	// containers (containerd and a kubelet on this machine).
	RealNodeName = "codex-real-node"
	// RealNodeKey is the label (value "true") and the NoSchedule taint of the
	// real node: only pods that select and tolerate it run there.
	RealNodeKey = "codex-k8s.dev/real-node"
	// RealNodeStorageClass gives claims `local` volumes on the real node,
	// which honour fsGroup.
	RealNodeStorageClass = "real-node-local"

	realNodeReadyTimeout = 2 * time.Minute
)

// RealNode is the shared cluster's real node and the images imported into
// it (built by test/images; see docs/testing.md).
type RealNode struct {
	Name   string
	images map[string]string
}

// RealNode returns the shared cluster's real node once it is Ready. It
// skips the test when the cluster was started without one
// (CLUSTER_REAL_NODE=0) and fails it when the node is missing otherwise.
func (c *Cluster) RealNode(t testing.TB) *RealNode {
	t.Helper()
	if c.Name != "" {
		t.Fatalf("clustertest: RealNode on private cluster %s: only the shared cluster has a real node", c.Name)
	}
	if os.Getenv("CLUSTER_REAL_NODE") == "0" {
		t.Skip("clustertest: the shared cluster runs without its real node (CLUSTER_REAL_NODE=0)")
	}
	envFile := filepath.Join(filepath.Dir(c.Kubeconfig), "images.env")
	if _, err := os.Stat(envFile); err != nil {
		// A cluster started without its real node (by an older
		// cluster.sh): `up` adds it to the running cluster.
		realNodeUp.Do(func() { realNodeUp.err = c.upUnderLock(t) })
		if realNodeUp.err != nil {
			t.Fatalf("clustertest: adding the real node: %v", realNodeUp.err)
		}
	}
	images, err := readImages(envFile)
	if err != nil {
		t.Fatalf("clustertest: the real node's images: %v (see %s status)", err, ScriptPath)
	}
	WaitFor(t, realNodeReadyTimeout, "node "+RealNodeName+" Ready", func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, RealNodeName, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Errorf("%w (see the kubelet's log, %s status)", err, ScriptPath)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	return &RealNode{Name: RealNodeName, images: images}
}

var realNodeUp struct {
	sync.Once
	err error
}

// upUnderLock runs `cluster.sh up` on the running shared cluster, under the
// lock that test binaries take to start it.
func (c *Cluster) upUnderLock(t testing.TB) error {
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	lockPath := filepath.Join(filepath.Dir(filepath.Dir(c.Kubeconfig)), "clustertest.lock")
	unlock, err := lockFile(ctx, lockPath)
	if err != nil {
		return fmt.Errorf("locking %s: %w", lockPath, err)
	}
	defer unlock()
	t.Logf("clustertest: the shared cluster has no real node; running %s up", ScriptPath)
	if out, err := c.run(ctx, "up"); err != nil {
		return fmt.Errorf("%s up failed: %w\n%s", ScriptPath, err, lastLines(out, 40))
	}
	return nil
}

// Image returns the reference of an image imported into the real node:
// "testbox" (the test program of test/images/testbox), "pause", "go-dev" or
// "node-dev". An unknown name fails the test.
func (r *RealNode) Image(t testing.TB, name string) string {
	t.Helper()
	ref, ok := r.images[name]
	if !ok {
		t.Fatalf("clustertest: no image %q on the real node (have: %v)", name, r.imageNames())
	}
	return ref
}

func (r *RealNode) imageNames() []string {
	names := make([]string, 0, len(r.images))
	for n := range r.images {
		names = append(names, n)
	}
	return names
}

// Place makes a pod run on the real node: it selects the node's label and
// tolerates its taint.
func (r *RealNode) Place(spec *corev1.PodSpec) {
	if spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	spec.NodeSelector[RealNodeKey] = "true"
	spec.Tolerations = append(spec.Tolerations, RealNodeToleration())
}

// RealNodeToleration tolerates the real node's taint.
func RealNodeToleration() corev1.Toleration {
	return corev1.Toleration{Key: RealNodeKey, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}
}

// readImages reads IMAGE_NAME=REF lines (cluster.sh writes them next to the
// kubeconfig) into name -> reference, NAME lowercased with '-' for '_'.
func readImages(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	images := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || !strings.HasPrefix(k, "IMAGE_") {
			continue
		}
		images[strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "IMAGE_")), "_", "-")] = v
	}
	return images, sc.Err()
}

// Kubectl runs the kubectl built with the cluster against it and returns
// its standard output; an error carries its standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd, err := c.KubectlCommand(ctx, args...)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// KubectlCommand is the cluster's kubectl with args, against it, not
// started: for commands that keep running (port-forward).
func (c *Cluster) KubectlCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	bin, err := c.kubectlPath()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...), nil
}

// kubectlPath: cluster.sh keeps the binaries in bin/ of its cache folder,
// which holds the state folder of every cluster (shared or named).
func (c *Cluster) kubectlPath() (string, error) {
	dir := filepath.Dir(c.Kubeconfig)
	for i := 0; i < 5; i++ {
		p := filepath.Join(dir, "bin", "kubectl")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		dir = filepath.Dir(dir)
	}
	return "", fmt.Errorf("no bin/kubectl above %s", c.Kubeconfig)
}
