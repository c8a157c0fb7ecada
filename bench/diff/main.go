// Command diff measures `reconcile --diff` against the local cluster, for
// two stacks deployed into fresh namespaces: the platform's services.yaml
// (staging) and a synthetic stack of -n services (bench/render's generator,
// replicas 0 so that no pod loads the shared cluster). For each it
//
//  1. deploys the stack with `codex-bootstrap reconcile`,
//  2. writes the rendered manifests with `reconcile --dry-run --output-dir`,
//  3. counts the API requests of one diff, one no-op reconcile (both
//     in-process, through a counting transport) and one `kubectl diff` of the
//     rendered manifests (its -v=6 request log),
//  4. times, interleaved, -reps runs of each as whole processes:
//     `codex-bootstrap reconcile --diff`, `kubectl diff --server-side` of the
//     rendered manifests, and the no-op `codex-bootstrap reconcile`,
//
// and prints the best and median wall times side by side. Nothing asserts on
// time: it measures and prints.
//
//	go run ./bench/diff --kubeconfig "$(test/cluster/cluster.sh kubeconfig | tail -1)"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/codex-k8s/codex-bootstrap/bench/internal/benchkit"
	renderbench "github.com/codex-k8s/codex-bootstrap/bench/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
)

// platformVars are the bootstrap variables the platform stack needs.
var platformVars = map[string]string{
	"CODEXK8S_SSH_HOST":   "127.0.0.1",
	"CODEXK8S_DOMAIN":     "codex.example.test",
	"CODEXK8S_GITHUB_PAT": "ghp_bench-token-0123456789",
}

type benchStack struct {
	name, path, env, ns string
}

type bench struct {
	kubeconfig, kubectl, bin, work string
	reps                           int
	cfg                            *rest.Config
	environ                        []string
}

func main() {
	b := &bench{}
	flag.StringVar(&b.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	flag.StringVar(&b.kubectl, "kubectl", filepath.Join(os.Getenv("HOME"), ".cache/codex-bootstrap/cluster/bin/kubectl"), "kubectl for the comparison")
	flag.IntVar(&b.reps, "reps", 5, "timed runs of each command per stack")
	n := flag.Int("n", 200, "services of the synthetic stack")
	keep := flag.Bool("keep", false, "keep the namespaces")
	flag.Parse()
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := b.run(ctx, *n, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (b *bench) run(ctx context.Context, n int, keep bool) error {
	var err error
	if b.cfg, err = clientcmd.BuildConfigFromFlags("", b.kubeconfig); err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp("", "bench-diff-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	b.bin = filepath.Join(b.work, "codex-bootstrap")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/codex-bootstrap").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	b.environ = os.Environ()
	for k, v := range platformVars {
		b.environ = append(b.environ, "CODEX_VAR_"+k+"="+v)
	}
	prefix := "bd" + benchkit.RandomHex(3)
	stacks, err := b.stacks(prefix, n)
	if err != nil {
		return err
	}
	if !keep {
		defer b.cleanup(stacks)
	}
	fmt.Printf("| stack | objects | reconcile --diff best / median | kubectl diff best / median | no-op reconcile best / median | requests per object: diff / kubectl diff / no-op reconcile |\n|---|---|---|---|---|---|\n")
	for _, s := range stacks {
		if err := b.measure(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// stacks writes the two stacks into the work folder, their namespaces
// prefixed.
func (b *bench) stacks(prefix string, n int) ([]benchStack, error) {
	repo, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	platform := filepath.Join(b.work, "platform")
	if err := os.MkdirAll(platform, 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{"services.yaml", "deploy", "bootstrap"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(repo, f), platform).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy %s: %v %s", f, err, out)
		}
	}
	synth := filepath.Join(b.work, "synthetic")
	if err := renderbench.WriteStack(synth, n); err != nil {
		return nil, err
	}
	replicas := regexp.MustCompile(`replicas: "\d+"`)
	for _, path := range []string{filepath.Join(platform, "services.yaml"), filepath.Join(synth, "services.yaml")} {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		text := strings.ReplaceAll(string(data), `namespaceTemplate: "{{ .Project }}`, `namespaceTemplate: "`+prefix+`-{{ .Project }}`)
		if strings.HasPrefix(path, synth) {
			text = replicas.ReplaceAllString(text, `replicas: "0"`)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	return []benchStack{
		{name: "platform (staging)", path: filepath.Join(platform, "services.yaml"), env: "staging", ns: prefix + "-codex-k8s-staging"},
		{name: fmt.Sprintf("synthetic, %d services", n), path: filepath.Join(synth, "services.yaml"), env: "dev", ns: prefix + "-" + renderbench.Project + "-dev"},
	}, nil
}

// measure deploys one stack, counts requests and times the three commands.
func (b *bench) measure(ctx context.Context, s benchStack) error {
	args := []string{"reconcile", "--config", s.path, "--env", s.env, "--kubeconfig", b.kubeconfig}
	if _, err := b.process(ctx, b.bin, args...); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	manifests := filepath.Join(b.work, s.ns+"-manifests")
	if _, err := b.process(ctx, b.bin, append(args, "--dry-run", "--output-dir", manifests)...); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	kubectlArgs := []string{"diff", "--kubeconfig", b.kubeconfig, "--server-side", "--field-manager", apply.FieldManager, "--force-conflicts", "-n", s.ns, "-R", "-f", manifests}
	diffReqs, objects, noopReqs, err := b.countLibrary(ctx, s)
	if err != nil {
		return err
	}
	kubectlReqs, err := b.countKubectl(ctx, kubectlArgs)
	if err != nil {
		return err
	}
	commands := [][]string{
		append([]string{b.bin}, append(slices.Clone(args), "--diff")...),
		append([]string{b.kubectl}, kubectlArgs...),
		append([]string{b.bin}, args...),
	}
	times := make([][]time.Duration, len(commands))
	for range b.reps {
		for i, c := range commands {
			d, err := b.process(ctx, c[0], c[1:]...)
			if err != nil {
				return err
			}
			times[i] = append(times[i], d)
		}
	}
	per := func(n int) string { return fmt.Sprintf("%.2f", float64(n)/float64(objects)) }
	fmt.Printf("| %s | %d | %s | %s | %s | %s / %s / %s |\n", s.name, objects, bestMedian(times[0]), bestMedian(times[1]), bestMedian(times[2]),
		per(diffReqs), per(kubectlReqs), per(noopReqs))
	return nil
}

// countLibrary counts the requests of one diff and one no-op reconcile of
// the stack, in-process, and the objects the diff compared.
func (b *bench) countLibrary(ctx context.Context, s benchStack) (diffReqs, objects, noopReqs int, err error) {
	prj, err := servicescfg.Open(s.path, servicescfg.Options{LookupEnv: func(k string) (string, bool) {
		v, ok := platformVars[strings.TrimPrefix(k, "CODEX_VAR_")]
		return v, ok
	}})
	if err != nil {
		return 0, 0, 0, err
	}
	p, err := prj.Plan(ctx, servicescfg.Target{Env: s.env})
	if err != nil {
		return 0, 0, 0, err
	}
	values, err := prj.Config()
	if err != nil {
		return 0, 0, 0, err
	}
	cfg, count := counting(b.cfg)
	res, err := apply.Diff(ctx, cfg, p, apply.DiffOptions{Values: values})
	if err != nil {
		return 0, 0, 0, err
	}
	if res.HasChanges() {
		return 0, 0, 0, fmt.Errorf("the diff of a deployed stack found changes: %d created, %d changed, %d pruned", res.Created, res.Changed, res.Pruned)
	}
	diffReqs, objects = int(count.Load()), len(res.Objects)
	cfg, count = counting(b.cfg)
	if _, err := apply.Reconcile(ctx, cfg, p, apply.Options{Values: values}); err != nil {
		return 0, 0, 0, err
	}
	return diffReqs, objects, int(count.Load()), nil
}

// countKubectl counts the requests kubectl logs at -v=6.
func (b *bench) countKubectl(ctx context.Context, args []string) (int, error) {
	cmd := exec.CommandContext(ctx, b.kubectl, append(slices.Clone(args), "-v=6")...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return 0, fmt.Errorf("kubectl diff: %v\n%s", err, lastLines(string(out), 20))
	}
	return len(requestLine.FindAllString(string(out), -1)), nil
}

// requestLine is one request in kubectl's -v=6 log: `"Response" verb="GET" url=...`.
var requestLine = regexp.MustCompile(`"Response" verb="[A-Z]+"`)

// process runs one command and returns its wall time; kubectl diff's exit
// 1 (differences found) is not a failure.
func (b *bench) process(ctx context.Context, name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = b.environ
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !(filepath.Base(name) == "kubectl" && errors.As(err, &exit) && exit.ExitCode() == 1) {
		return d, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, lastLines(out.String(), 20))
	}
	return d, nil
}

func (b *bench) cleanup(stacks []benchStack) {
	kube, err := kubernetes.NewForConfig(b.cfg)
	if err != nil {
		return
	}
	ctx := context.Background()
	for _, s := range stacks {
		_ = kube.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
		// The platform stack's cluster-wide worker rights, named after
		// the namespace.
		name := s.ns + "-worker-slots"
		_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	}
}

// counting is a copy of cfg that counts its requests.
func counting(cfg *rest.Config) (*rest.Config, *atomic.Int64) {
	var n atomic.Int64
	return benchkit.Observed(cfg, func(*http.Request) { n.Add(1) }), &n
}

func bestMedian(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s / %s", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
