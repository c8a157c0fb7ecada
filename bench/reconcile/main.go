// Command reconcile benchmarks `reconcile` against the local cluster: a
// synthetic stack of 40 services in 5 groups, each a Deployment whose pod
// goes Ready after 1..5 s (kwok's pod-ready stage reads the delay from the
// pod annotation codex-k8s.dev/ready-delay), deployed
//
//  1. by the engine (DAG walk, parallel, watch-based readiness),
//  2. by the shell-first baseline: for each manifest in plan order,
//     `kubectl apply -f` then `kubectl rollout status`,
//  3. by the engine again with nothing changed (the no-op re-run),
//
// into fresh namespaces of the same cluster in the same run. It prints the
// wall times next to the critical-path bound: the longest path through the
// DAG, group barriers included, each node weighted by its delay.
//
//	test/cluster/cluster.sh up
//	go run ./bench/reconcile --kubeconfig "$(test/cluster/cluster.sh kubeconfig | tail -1)"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/codex-k8s/codex-bootstrap/bench/internal/benchkit"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

var groups = []string{"stateful", "migrations", "internal", "edge", "frontend"}

// perGroup is how many services each group has (5 x 8 = 40).
const perGroup = 8

// delays are the readiness delays (seconds) of a group's services, rotated
// per group so groups differ; deps are the in-group dependencies (index ->
// indexes). Chains stay within the group's longest delay, so each group's
// critical path is its slowest chain.
var (
	delays = []int{5, 4, 3, 2, 1, 1, 2, 3}
	deps   = map[int][]int{3: {}, 4: {3}, 5: {4}, 6: {7}, 7: {}}
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	kubectl := flag.String("kubectl", filepath.Join(os.Getenv("HOME"), ".cache/codex-bootstrap/cluster/bin/kubectl"), "kubectl for the baseline")
	parallel := flag.Int("parallel", apply.DefaultParallel, "reconcile --parallel")
	skipBaseline := flag.Bool("skip-baseline", false, "skip the shell-first baseline (it takes about two minutes)")
	keep := flag.Bool("keep", false, "keep the namespaces")
	flag.Parse()
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *kubeconfig, *kubectl, *parallel, *skipBaseline, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, kubectl string, parallel int, skipBaseline, keep bool) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-reconcile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	suffix := benchkit.RandomHex(2)
	path, weight, err := writeStack(dir, "bench"+suffix)
	if err != nil {
		return err
	}
	s, err := stack.Load(path)
	if err != nil {
		return err
	}
	build := func(env string) (*plan.Plan, error) {
		return plan.Build(ctx, s, plan.Options{Env: env})
	}
	p, err := build("engine")
	if err != nil {
		return err
	}
	bound := criticalPath(p, weight)
	var namespaces []string
	defer func() {
		if keep {
			return
		}
		for _, ns := range namespaces {
			_ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		}
	}()

	fmt.Printf("stack: %d services in %d groups, readiness delays 1..5 s (sum %d s), --parallel %d\n", len(p.Nodes), len(groups), benchkit.Sum(weight), parallel)
	fmt.Printf("critical-path bound (DAG + group barriers, weighted by delay): %s\n", bound)

	namespaces = append(namespaces, p.Namespace)
	start := time.Now()
	res, err := apply.Reconcile(ctx, cfg, p, apply.Options{Parallel: parallel, Holder: "bench"})
	engine := time.Since(start)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	fmt.Printf("engine reconcile:   %8s  (%.2fx the bound; %d created)\n", engine.Round(10*time.Millisecond), engine.Seconds()/bound.Seconds(), res.Created)

	start = time.Now()
	res, err = apply.Reconcile(ctx, cfg, p, apply.Options{Parallel: parallel, Holder: "bench"})
	noop := time.Since(start)
	if err != nil {
		return fmt.Errorf("engine re-run: %w", err)
	}
	fmt.Printf("no-op re-run:       %8s  (no changes: %v, %d unchanged)\n", noop.Round(10*time.Millisecond), res.NoChanges(), res.Unchanged)

	if skipBaseline {
		return nil
	}
	bp, err := build("baseline")
	if err != nil {
		return err
	}
	namespaces = append(namespaces, bp.Namespace)
	start = time.Now()
	if err := baseline(ctx, kubectl, kubeconfig, bp); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	base := time.Since(start)
	fmt.Printf("shell-first baseline: %6s  (engine is %.2fx faster)\n", base.Round(10*time.Millisecond), base.Seconds()/engine.Seconds())
	return nil
}

// baseline deploys like the shell scripts did: every manifest in plan
// order, applied then waited for, one at a time.
func baseline(ctx context.Context, kubectl, kubeconfig string, p *plan.Plan) error {
	k := func(args ...string) error {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := k("create", "namespace", p.Namespace); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-baseline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, s := range p.Nodes {
		for i, m := range s.Manifests {
			f := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", s.Name, i))
			if err := os.WriteFile(f, m.Data, 0o644); err != nil {
				return err
			}
			if err := k("-n", p.Namespace, "apply", "-f", f); err != nil {
				return err
			}
		}
		for _, o := range s.Objects {
			if o.Kind == "Deployment" {
				if err := k("-n", p.Namespace, "rollout", "status", "deployment/"+o.Name, "--timeout=5m"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// criticalPath is the longest path through the plan's DAG, each node
// weighted by its readiness delay: a node starts when its After are ready
// and every node of an earlier stage (group barrier) is.
func criticalPath(p *plan.Plan, weight map[string]int) time.Duration {
	finish := map[string]int{}
	stageEnd := map[int]int{} // the latest finish within each stage
	longest := 0
	for _, s := range p.Nodes { // apply order: every After and stage comes first
		start := 0
		for st, end := range stageEnd {
			if st < s.Stage {
				start = max(start, end)
			}
		}
		for _, a := range s.After {
			start = max(start, finish[a])
		}
		finish[s.Name] = start + weight[s.Name]
		stageEnd[s.Stage] = max(stageEnd[s.Stage], finish[s.Name])
		longest = max(longest, finish[s.Name])
	}
	return time.Duration(longest) * time.Second
}

// writeStack writes the synthetic stack; it returns its path and each
// service's delay in seconds.
func writeStack(dir, project string) (string, map[string]int, error) {
	weight := map[string]int{}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: bench}
spec:
  project: %s
  environments:
    engine: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-engine"}
    baseline: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-baseline"}
  deploy: {order: [%s]}
  services:
`, project, strings.Join(groups, ", "))
	for g, group := range groups {
		for i := range perGroup {
			name := fmt.Sprintf("%s-%d", group, i)
			d := delays[(i+g)%len(delays)]
			if _, chained := deps[i]; chained {
				d = delays[i] // keep chains short: their delays are fixed
			}
			weight[name] = d
			var dependsOn []string
			for _, j := range deps[i] {
				dependsOn = append(dependsOn, fmt.Sprintf("%s-%d", group, j))
			}
			fmt.Fprintf(&b, "    - {name: %s, group: %s, dependsOn: [%s], manifests: [svc.yaml.tpl]}\n", name, group, strings.Join(dependsOn, ", "))
		}
	}
	tpl := `apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Service.Name }}}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Service.Name }}}}
  template:
    metadata:
      labels: {app: {{ .Service.Name }}}
      annotations: {codex-k8s.dev/ready-delay: "{{ index .Vars .Service.Name }}s"}
    spec:
      containers: [{name: main, image: "example.test/{{ .Service.Name }}:1"}]
`
	b.WriteString("  vars:\n")
	for name, d := range weight {
		fmt.Fprintf(&b, "    %s: %q\n", name, fmt.Sprint(d))
	}
	if err := os.WriteFile(filepath.Join(dir, "svc.yaml.tpl"), []byte(tpl), 0o644); err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "services.yaml")
	return path, weight, os.WriteFile(path, []byte(b.String()), 0o644)
}
