package hotreload_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// benchEdits is the number of edits of each kind.
const benchEdits = 10

// sample is one edit's way from the save to the new response.
type sample struct {
	sync    time.Duration // save -> file in the workspace (sync done, or kubectl cp exited)
	rebuild time.Duration // Go: air's "building..." -> "running..."; frontend: 0
	total   time.Duration // save -> new response (Go) or HMR update (frontend)
}

// BenchmarkHotReloadEditToResponse measures, on the real node, the time
// from saving a file to the new response over benchEdits edits, for the
// Go service (air) and the frontend (Vite HMR), each through sync --watch
// and through the baseline (kubectl cp of the changed file into the
// workspace, the same watcher in the pod), interleaved in one run. Run:
//
//	go test ./test/hotreload -run '^$' -bench HotReload -benchtime 1x -v
func BenchmarkHotReloadEditToResponse(b *testing.B) {
	c := clustertest.Shared(b)
	node := c.RealNode(b)
	s := newSlot(b, c, node, "hb")
	s.deploy(b)
	catalogPod, catalogIP := s.pod(b, "catalog")
	catalog := "http://" + catalogIP + ":8080"
	storefront := "http://" + s.podIP(b, "storefront") + ":3000"
	synced := s.watchLibrary(b)
	hmr := dialHMR(b, storefront)
	waitBody(b, reloadTimeout, storefront+"/src/main.js", "message.js")
	waitBody(b, reloadTimeout, storefront+"/src/message.js", "Welcome")

	series := map[string][]sample{}
	base := b.TempDir()
	for i := range benchEdits {
		for _, mode := range []string{"sync", "kubectl-cp"} {
			marker := fmt.Sprintf("edit %d by %s", i, mode)
			series["go/"+mode] = append(series["go/"+mode], s.goEdit(b, mode, marker, base, synced, catalog, catalogPod))
			series["frontend/"+mode] = append(series["frontend/"+mode], s.frontendEdit(b, mode, marker, base, synced, hmr))
		}
	}
	b.StopTimer()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range series {
			if !yield(k) {
				return
			}
		}
	}) {
		med, worst := stats(series[name], func(x sample) time.Duration { return x.total })
		syncMed, _ := stats(series[name], func(x sample) time.Duration { return x.sync })
		buildMed, _ := stats(series[name], func(x sample) time.Duration { return x.rebuild })
		b.Logf("%-20s median %6.3fs  worst %6.3fs  (median: file in workspace %6.3fs, rebuild %6.3fs, rest %6.3fs)",
			name, med.Seconds(), worst.Seconds(), syncMed.Seconds(), buildMed.Seconds(), (med - syncMed - buildMed).Seconds())
		key := strings.ReplaceAll(name, "/", "-")
		b.ReportMetric(med.Seconds(), key+"-median-s")
		b.ReportMetric(worst.Seconds(), key+"-worst-s")
	}
}

func stats(xs []sample, f func(sample) time.Duration) (median, worst time.Duration) {
	d := make([]time.Duration, len(xs))
	for i, x := range xs {
		d[i] = f(x)
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)-1]
}

// syncLog is when each sync of the library's watcher finished.
type syncLog struct {
	mu   sync.Mutex
	done []time.Time
}

// after returns the end of the first sync that ended after t.
func (l *syncLog) after(tb testing.TB, t time.Time) time.Time {
	tb.Helper()
	deadline := time.Now().Add(reloadTimeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, d := range l.done {
			if d.After(t) {
				l.mu.Unlock()
				return d
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("no sync after %s", t)
	return time.Time{}
}

// watchLibrary runs the library's Syncer.Watch on the slot's tree (what
// sync --watch runs) and logs when each sync ends.
func (s *slot) watchLibrary(tb testing.TB) *syncLog {
	tb.Helper()
	tree, err := workspace.NewTree(s.src)
	if err != nil {
		tb.Fatal(err)
	}
	spec := slotWorkspace(tb, s)
	syncer := &workspace.Syncer{Tree: tree, Spec: spec, Pod: workspace.HelperName, Exec: workspace.KubeExecutor{Config: s.cluster.Config, Client: s.cluster.Client}}
	ctx, cancel := context.WithCancel(context.Background())
	log := &syncLog{}
	done := make(chan error, 1)
	go func() {
		done <- syncer.Watch(ctx, workspace.WatchOptions{}, func(r workspace.Result, err error) {
			if err != nil {
				tb.Errorf("sync: %v", err)
				return
			}
			log.mu.Lock()
			log.done = append(log.done, time.Now())
			log.mu.Unlock()
		})
	}()
	tb.Cleanup(func() { cancel(); <-done })
	log.after(tb, time.Time{}) // the first, full sync
	return log
}

// place saves an edit: through the watched tree (sync), or into a copy
// outside it and then `kubectl cp` into the workspace (the baseline).
// It returns when the file is in the workspace.
func (s *slot) place(tb testing.TB, mode, rel, old, new, base string, synced *syncLog) (saved, inWorkspace time.Time) {
	tb.Helper()
	if mode == "sync" {
		saved = time.Now()
		s.replaceAll(tb, filepath.Join(s.src, rel), old, new)
		return saved, synced.after(tb, saved)
	}
	local := filepath.Join(base, filepath.Base(rel))
	b, err := os.ReadFile(filepath.Join(s.src, rel))
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(local, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	saved = time.Now()
	s.replaceAll(tb, local, old, new)
	cmd, err := s.cluster.KubectlCommand(tb.Context(), "cp", local, s.ns+"/"+workspace.HelperName+":/src/"+rel, "-c", workspace.HelperName)
	if err != nil {
		tb.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("kubectl cp: %v\n%s", err, out)
	}
	return saved, time.Now()
}

// replaceAll rewrites a file with the text between old's markers replaced
// (old is a prefix; the line it starts is replaced up to its quote).
func (s *slot) replaceAll(tb testing.TB, p, prefix, line string) {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.Contains(l, prefix) {
			lines[i] = line
		}
	}
	tmp := p + ".swp~"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		tb.Fatal(err)
	}
}

func (s *slot) goEdit(tb testing.TB, mode, marker, base string, synced *syncLog, catalog, pod string) sample {
	tb.Helper()
	saved, placed := s.place(tb, mode, "catalog/hello.go", "w.Write(", fmt.Sprintf("\tw.Write([]byte(%q))", marker+"\n"), base, synced)
	var answered time.Time
	for deadline := time.Now().Add(reloadTimeout); ; time.Sleep(10 * time.Millisecond) {
		if body, err := get(catalog + "/api/hello"); err == nil && strings.Contains(body, marker) {
			answered = time.Now()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: catalog never answered %q", mode, marker)
		}
	}
	return sample{sync: placed.Sub(saved), rebuild: s.airBuild(tb, pod, saved), total: answered.Sub(saved)}
}

func (s *slot) frontendEdit(tb testing.TB, mode, marker, base string, synced *syncLog, hmr *hmrConn) sample {
	tb.Helper()
	saved, placed := s.place(tb, mode, "storefront/src/message.js", "export const message", fmt.Sprintf("export const message = %q;", marker), base, synced)
	update := hmr.next(tb, "update")
	got := time.Now()
	if !strings.Contains(update, "message.js") {
		tb.Fatalf("%s: HMR update for another module: %s", mode, update)
	}
	return sample{sync: placed.Sub(saved), total: got.Sub(saved)}
}

// airBuild is the time air took to rebuild after since: from its
// "building..." line to its "running..." line, by the log's timestamps.
func (s *slot) airBuild(tb testing.TB, pod string, since time.Time) time.Duration {
	tb.Helper()
	st := metav1.NewTime(since.Add(-time.Second))
	raw, err := s.cluster.Client.CoreV1().Pods(s.ns).GetLogs(pod, &corev1.PodLogOptions{Timestamps: true, SinceTime: &st}).DoRaw(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	var building, running time.Time
	for _, l := range strings.Split(string(raw), "\n") {
		ts, text, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(since) {
			continue
		}
		switch {
		case strings.Contains(text, "building...") && building.IsZero():
			building = at
		case strings.Contains(text, "running...") && !building.IsZero() && running.IsZero():
			running = at
		}
	}
	if building.IsZero() || running.IsZero() {
		return 0
	}
	return running.Sub(building)
}

// pod is the name and address of the ready pod of a service.
func (s *slot) pod(tb testing.TB, service string) (string, string) {
	tb.Helper()
	ip := s.podIP(tb, service)
	pods, err := s.cluster.Client.CoreV1().Pods(s.ns).List(tb.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + service})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == ip {
			return p.Name, ip
		}
	}
	tb.Fatalf("no pod of %s at %s", service, ip)
	return "", ""
}
