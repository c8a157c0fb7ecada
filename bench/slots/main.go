// Command slots measures the platform worker's case against the local
// cluster (kwok nodes): one process reconciling many ai-slots at once
// through the library, as the worker does when tasks start together.
//
//  1. one slot alone, into a fresh namespace (the reference time),
//  2. -n slots at once, each in its own goroutine, sharing one set of
//     clients (apply.NewClients: one rate limiter, one discovery cache),
//  3. the same -n slots again with nothing changed (the no-op pass),
//     through a transport that counts the API requests,
//  4. every slot deleted through apply.DeleteSlotWith.
//
// It prints the wall times, their ratio and the no-op pass's requests per
// object. Nothing asserts on time: it measures and prints.
//
//	go run ./bench/slots --kubeconfig "$(test/cluster/cluster.sh kubeconfig | tail -1)"   # -n 20 -stack examples/new-project/services.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/codex-k8s/codex-bootstrap/bench/internal/benchkit"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// vars are the bootstrap variables of both real stacks.
var vars = map[string]string{
	"CODEXK8S_SSH_HOST":   "127.0.0.1",
	"CODEXK8S_DOMAIN":     "codex.example.test",
	"CODEXK8S_GITHUB_PAT": "ghp_bench-token-0123456789",
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	path := flag.String("stack", "examples/new-project/services.yaml", "stack whose slot environment is deployed")
	env := flag.String("env", "ai-slot", "slot environment")
	n := flag.Int("n", 20, "slots reconciled at once")
	qps := flag.Float64("qps", 0, "client rate limit in requests per second (0: the library's default)")
	keep := flag.Bool("keep", false, "keep the namespaces")
	flag.Parse()
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *kubeconfig, *path, *env, *n, *qps, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, path, env string, n int, qps float64, keep bool) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	if qps > 0 {
		cfg.QPS, cfg.Burst = float32(qps), int(2*qps)
	}
	prefix := "bs" + benchkit.RandomHex(3)
	one, values, err := plans(path, env, prefix+"a", 1)
	if err != nil {
		return err
	}
	many, _, err := plans(path, env, prefix+"b", n)
	if err != nil {
		return err
	}
	createCfg, created := counting(cfg)
	c, err := apply.NewClients(createCfg)
	if err != nil {
		return err
	}
	if !keep {
		defer cleanup(c, append(one, many...))
	}
	t1, _, err := reconcileAll(ctx, c, one, values)
	if err != nil {
		return fmt.Errorf("one slot: %w", err)
	}
	oneApply, oneWait, oneNodes := takePhases(1)
	oneRequests := created.total()
	created.reset()
	plain, err := kubernetes.NewForConfig(cfg) // not counted
	if err != nil {
		return err
	}
	served0, cluster0 := servedRequests(ctx, plain), sampleCPU()
	cpu0, start := cpuTime(), time.Now()
	tn, slowest, err := reconcileAll(ctx, c, many, values)
	if err != nil {
		return fmt.Errorf("%d slots: %w", n, err)
	}
	cpuN := cpuTime() - cpu0
	cluster := sampleCPU()
	served := servedRequests(ctx, plain)
	for k, v := range served0 {
		served[k] -= v
	}
	manyApply, manyWait, manyNodes := takePhases(n)
	manyRequests := created.snapshot()
	counted, requests := counting(cfg)
	cc, err := apply.NewClients(counted)
	if err != nil {
		return err
	}
	t01, _, err := noop(ctx, c, one, values)
	if err != nil {
		return fmt.Errorf("no-op pass of one slot: %w", err)
	}
	t0, objects, err := noop(ctx, cc, many, values)
	if err != nil {
		return fmt.Errorf("no-op pass: %w", err)
	}
	floorOne, _, err := plans(path, env, prefix+"c", 1)
	if err != nil {
		return err
	}
	floorMany, _, err := plans(path, env, prefix+"d", n)
	if err != nil {
		return err
	}
	if !keep {
		defer deleteNamespaces(plain, append(floorOne, floorMany...))
	}
	f1, err := floor(ctx, c, floorOne, prefix+"c")
	if err != nil {
		return fmt.Errorf("floor, one slot: %w", err)
	}
	fcluster0 := sampleCPU()
	fn, err := floor(ctx, c, floorMany, prefix+"d")
	if err != nil {
		return fmt.Errorf("floor, %d slots: %w", n, err)
	}
	fcluster := sampleCPU()
	fmt.Printf("stack %s, environment %s, %d objects per slot, client QPS %v\n", path, env, objects/n, effectiveQPS(cfg))
	fmt.Printf("one slot:             %s\n", t1.Round(time.Millisecond))
	manyTotal := benchkit.Sum(manyRequests)
	fmt.Printf("%d slots at once:     %s (%.2fx one slot; slowest slot %s); %d requests for one slot, %d for %d slots\n", n, tn.Round(time.Millisecond), tn.Seconds()/t1.Seconds(), slowest.Round(time.Millisecond), oneRequests, manyTotal, n)
	fmt.Printf("  this process's CPU time over the %d slots: %s (from %d to %d ms since the epoch)\n", n, cpuN.Round(time.Millisecond), start.UnixMilli(), start.Add(tn).UnixMilli())
	printCPU(cluster0, cluster)
	if len(served0) > 0 {
		fmt.Printf("  the API server served %d requests meanwhile (apiserver_request_total), %d of them this process's; the most served:\n", benchkit.Sum(served), manyTotal)
		printRequests(top(served, 12), n)
		fmt.Println("  this process's:")
	}
	printRequests(manyRequests, n)
	fmt.Printf("  per slot, summed over its nodes: applying %s (one slot %s, %.2fx), waiting for the cluster's controllers %s (one slot %s, %.2fx)\n",
		manyApply.Round(time.Millisecond), oneApply.Round(time.Millisecond), manyApply.Seconds()/oneApply.Seconds(),
		manyWait.Round(time.Millisecond), oneWait.Round(time.Millisecond), manyWait.Seconds()/oneWait.Seconds())
	for _, node := range slices.Sorted(maps.Keys(manyNodes)) {
		fmt.Printf("  wait for %-16s one slot %7s, longest of %d %7s\n", node, oneNodes[node].Round(time.Millisecond), n, manyNodes[node].Round(time.Millisecond))
	}
	fmt.Printf("no-op pass, one slot: %s\n", t01.Round(time.Millisecond))
	fmt.Printf("no-op pass, %d slots: %s (%.2fx one slot), %d requests for %d objects: %.2f per object\n", n, t0.Round(time.Millisecond), t0.Seconds()/t01.Seconds(), requests.total(), objects, float64(requests.total())/float64(objects))
	printRequests(requests.snapshot(), n)
	fmt.Printf("floor (one apply per object, no order, no read, no wait; then every workload ready): one slot %s, %d slots %s (%.2fx the floor's one slot, %.2fx the engine's one slot)\n",
		f1.Round(time.Millisecond), n, fn.Round(time.Millisecond), fn.Seconds()/f1.Seconds(), fn.Seconds()/t1.Seconds())
	printCPU(fcluster0, fcluster)
	return nil
}

// plans plans slots 1..n of env, with prefix before every namespace, and
// resolves the stack's config values.
func plans(path, env, prefix string, n int) ([]*plan.Plan, *config.Values, error) {
	s, err := stack.Load(path)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range s.Spec.Environments {
		if e != nil && e.NamespaceTemplate != "" {
			e.NamespaceTemplate = prefix + "-" + e.NamespaceTemplate
		}
	}
	values := config.Resolve(s, nil, func(k string) (string, bool) { v, ok := vars[strings.TrimPrefix(k, config.EnvPrefix)]; return v, ok })
	var out []*plan.Plan
	for i := 1; i <= n; i++ {
		p, err := plan.Build(context.Background(), s, plan.Options{Env: env, Slot: strconv.Itoa(i), Config: values.NonSecret()})
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
	}
	return out, values, nil
}

// reconcileAll reconciles every plan at once and returns the wall time and
// the slowest plan's own time.
func reconcileAll(ctx context.Context, c *apply.Clients, ps []*plan.Plan, values *config.Values) (time.Duration, time.Duration, error) {
	times := make([]time.Duration, len(ps))
	errs := make([]error, len(ps))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			obs := &phases{started: map[string]time.Time{}}
			res, err := apply.ReconcileWith(ctx, c, p, apply.Options{Values: values, Holder: "bench", Observer: obs})
			errs[i] = err
			if res != nil {
				times[i] = res.Duration
				obs.record()
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	var slowest time.Duration
	for i := range ps {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("%s: %w", ps[i].Namespace, errs[i])
		}
		slowest = max(slowest, times[i])
	}
	return wall, slowest, nil
}

// noop reconciles every plan at once again, expecting no change, and
// returns the wall time and the objects looked at.
func noop(ctx context.Context, c *apply.Clients, ps []*plan.Plan, values *config.Values) (time.Duration, int, error) {
	var objects atomic.Int64
	errs := make([]error, len(ps))
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			res, err := apply.ReconcileWith(ctx, c, p, apply.Options{Values: values, Holder: "bench"})
			switch {
			case err != nil:
				errs[i] = err
			case !res.NoChanges():
				errs[i] = fmt.Errorf("changed %d, created %d, pruned %d", res.Changed, res.Created, res.Pruned)
			default:
				objects.Add(int64(len(res.Objects)))
			}
		})
	}
	wg.Wait()
	for i := range ps {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("%s: %w", ps[i].Namespace, errs[i])
		}
	}
	return time.Since(start), int(objects.Load()), nil
}

// phases splits one slot's reconcile into the engine's requests (from a
// node's apply started to its wait started) and the wait for the
// cluster's controllers (from wait started to ready).
type phases struct {
	mu          sync.Mutex
	started     map[string]time.Time
	apply, wait time.Duration
}

func (p *phases) Event(e apply.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case e.Phase == apply.PhaseApply && e.Status == apply.StatusStarted:
		p.started[e.Node] = e.Time
	case e.Phase == apply.PhaseWait && e.Status == apply.StatusStarted:
		p.apply += e.Time.Sub(p.started[e.Node])
		p.started[e.Node] = e.Time
	case e.Status == apply.StatusReady:
		d := e.Time.Sub(p.started[e.Node])
		p.wait += d
		nodeWait(e.Node, d)
	}
}

var (
	phasesMu          sync.Mutex
	applySum, waitSum time.Duration
	// slowestWait is each node's longest wait over the slots of a run.
	slowestWait = map[string]time.Duration{}
)

func nodeWait(node string, d time.Duration) {
	phasesMu.Lock()
	defer phasesMu.Unlock()
	slowestWait[node] = max(slowestWait[node], d)
}

// record adds a slot's phases to the run's totals.
func (p *phases) record() {
	phasesMu.Lock()
	defer phasesMu.Unlock()
	applySum += p.apply
	waitSum += p.wait
}

// takePhases returns the totals so far, per slot, and each node's longest
// wait, and resets them.
func takePhases(slots int) (time.Duration, time.Duration, map[string]time.Duration) {
	phasesMu.Lock()
	defer phasesMu.Unlock()
	a, w, nodes := applySum/time.Duration(slots), waitSum/time.Duration(slots), slowestWait
	applySum, waitSum, slowestWait = 0, 0, map[string]time.Duration{}
	return a, w, nodes
}

func cleanup(c *apply.Clients, ps []*plan.Plan) {
	for _, p := range ps {
		if _, err := apply.DeleteSlotWith(context.Background(), c, p, apply.SlotOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitGone(ctx, c.Kube, ps)
}

// deleteNamespaces deletes the plans' namespaces and waits until they are
// gone, so that the next run does not share the cluster with their
// deletion.
func deleteNamespaces(kube kubernetes.Interface, ps []*plan.Plan) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, p := range ps {
		if err := kube.CoreV1().Namespaces().Delete(ctx, p.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	waitGone(ctx, kube, ps)
}

// waitGone waits until the plans' namespaces are gone.
func waitGone(ctx context.Context, kube kubernetes.Interface, ps []*plan.Plan) {
	for _, p := range ps {
		for {
			_, err := kube.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || ctx.Err() != nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// counting is a copy of cfg that counts its requests, by verb and resource.
func counting(cfg *rest.Config) (*rest.Config, *requestCounter) {
	rc := &requestCounter{by: map[string]int{}}
	return benchkit.Observed(cfg, func(r *http.Request) { rc.add(requestKind(r)) }), rc
}

// requestCounter counts requests by kind ("LIST pods", "WATCH deployments").
type requestCounter struct {
	mu sync.Mutex
	by map[string]int
}

func (rc *requestCounter) add(kind string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.by[kind]++
}

func (rc *requestCounter) total() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return benchkit.Sum(rc.by)
}

func (rc *requestCounter) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.by = map[string]int{}
}

func (rc *requestCounter) snapshot() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.by)
}

// requestKind names a request by its verb and resource: GET of a
// collection is LIST, with watch=true WATCH; discovery is "discovery".
func requestKind(r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// /api/v1/... or /apis/GROUP/VERSION/...
	rest := parts
	switch {
	case len(parts) > 0 && parts[0] == "api":
		rest = parts[min(2, len(parts)):]
	case len(parts) > 0 && parts[0] == "apis":
		rest = parts[min(3, len(parts)):]
	}
	if len(rest) == 0 {
		return "discovery"
	}
	if rest[0] == "namespaces" && len(rest) > 2 {
		rest = rest[2:]
	}
	verb := r.Method
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		verb = "WATCH"
	case r.Method == http.MethodGet && len(rest) == 1:
		verb = "LIST"
	}
	res := rest[0]
	if len(rest) > 2 {
		res += "/" + rest[2]
	}
	return verb + " " + res
}

// servedRequests is the API server's apiserver_request_total by verb and
// resource (every client's requests), empty when its metrics are not
// readable.
func servedRequests(ctx context.Context, kube kubernetes.Interface) map[string]int {
	raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for line := range strings.Lines(string(raw)) {
		labels, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			continue
		}
		key := label(labels, "verb") + " " + label(labels, "resource")
		if sub := label(labels, "subresource"); sub != "" {
			key += "/" + sub
		}
		out[key] += int(v)
	}
	return out
}

// label is the value of name in a metric line's label list.
func label(labels, name string) string {
	_, rest, ok := strings.Cut(","+labels, ","+name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// top keeps the n largest counts.
func top(by map[string]int, n int) map[string]int {
	keys := slices.SortedFunc(maps.Keys(by), func(a, b string) int { return by[b] - by[a] })
	out := map[string]int{}
	for _, k := range keys[:min(n, len(keys))] {
		if by[k] > 0 {
			out[k] = by[k]
		}
	}
	return out
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// printRequests prints the request counts, most first.
func printRequests(by map[string]int, slots int) {
	kinds := slices.SortedFunc(maps.Keys(by), func(a, b string) int {
		if by[a] != by[b] {
			return by[b] - by[a]
		}
		return strings.Compare(a, b)
	})
	for _, k := range kinds {
		fmt.Printf("    %-36s %5d (%.1f a slot)\n", k, by[k], float64(by[k])/float64(slots))
	}
}

func effectiveQPS(cfg *rest.Config) float32 {
	if cfg.QPS == 0 {
		return 100 // apply.NewClients' default
	}
	return cfg.QPS
}
