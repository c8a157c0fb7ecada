package apply_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// TestReconcileStacks deploys both stacks, the platform's services.yaml
// and examples/new-project, into every environment (two ai-slots side by
// side), checks the order from the events, then reconciles again and
// checks that nothing changed.
func TestReconcileStacks(t *testing.T) {
	cfg := testCluster(t)
	admin, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stacks := map[string]string{
		"platform":    filepath.Join(repoRoot, "services.yaml"),
		"new-project": filepath.Join(repoRoot, "examples/new-project/services.yaml"),
	}
	targets := []struct{ env, slot string }{
		{"dev", ""}, {"staging", ""}, {"ai-slot", "1"}, {"ai-slot", "2"}, {"prod", ""},
	}
	for name, path := range stacks {
		t.Run(name, func(t *testing.T) {
			prefix := uniquePrefix(t)
			stackT := t
			// Every environment stays deployed until the stack's subtests
			// end: the two slots live side by side, and at the end no run
			// has touched another environment's objects.
			deployed := map[string]map[string]string{}
			plans := map[string]*plan.Plan{}
			defer func() {
				for label, rvs := range deployed {
					if now := resourceVersions(t, cfg, plans[label]); !equalMaps(rvs, now) {
						t.Errorf("%s changed while other environments were reconciled:\nbefore %v\nafter  %v", label, rvs, now)
					}
				}
			}()
			for _, tg := range targets {
				label := tg.env
				if tg.slot != "" {
					label += "-" + tg.slot
				}
				t.Run(label, func(t *testing.T) {
					p, values := loadPlan(t, path, tg.env, tg.slot, prefix, nil)
					cleanup(stackT, cfg, p.Namespace)
					cleanupClusterScoped(stackT, admin, p)
					var logs bytes.Buffer
					opts := apply.Options{Values: values, Holder: "test " + t.Name(),
						Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
					res, events, err := run(t, context.Background(), cfg, p, opts)
					if err != nil {
						t.Fatalf("reconcile: %v", err)
					}
					if res.Created == 0 {
						t.Errorf("first reconcile created nothing: %+v", res)
					}
					checkAllReady(t, p, res)
					checkOrder(t, p, events)
					checkNamespace(t, cfg, p)
					checkNoSecretValues(t, testValues["CODEXK8S_GITHUB_PAT"], logs.String(), events)

					before := resourceVersions(t, cfg, p)
					start := time.Now()
					res2, events2, err := run(t, context.Background(), cfg, p, opts)
					took := time.Since(start)
					if err != nil {
						t.Fatalf("second reconcile: %v", err)
					}
					if !res2.NoChanges() {
						t.Errorf("second reconcile changed things: created %d changed %d pruned %d: %+v", res2.Created, res2.Changed, res2.Pruned, res2.Objects)
					}
					if after := resourceVersions(t, cfg, p); !equalMaps(before, after) {
						t.Errorf("resourceVersions changed on a no-op reconcile:\nbefore %v\nafter  %v", before, after)
					}
					// Speed is measured by bench/reconcile, not asserted here.
					t.Logf("no-op reconcile took %s", took)
					checkOrder(t, p, events2)
					checkLeaseReleased(t, cfg, p.Namespace)
					checkDiffFindsNothing(t, cfg, p, values, before)
					deployed[label], plans[label] = before, p
				})
			}
		})
	}
}

// checkDiffFindsNothing: a diff of what was just deployed finds no change
// and writes nothing.
func checkDiffFindsNothing(t *testing.T, cfg *rest.Config, p *plan.Plan, values apply.ConfigValues, before map[string]string) {
	t.Helper()
	d, err := apply.Diff(context.Background(), cfg, p, apply.DiffOptions{Values: values})
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	if d.HasChanges() {
		for _, o := range append(d.Objects, d.Prune...) {
			if o.Change != apply.ChangeNone {
				t.Errorf("diff after a reconcile: %s %s %s %s\n%s", o.Change, o.Object, o.Reason, o.Err, o.Diff)
			}
		}
	}
	if after := resourceVersions(t, cfg, p); !equalMaps(before, after) {
		t.Errorf("resourceVersions changed by a diff:\nbefore %v\nafter  %v", before, after)
	}
}

func checkAllReady(t *testing.T, p *plan.Plan, res *apply.Result) {
	t.Helper()
	if len(res.Nodes) != len(p.Nodes) {
		t.Errorf("%d node results for %d steps", len(res.Nodes), len(p.Nodes))
	}
	for _, n := range res.Nodes {
		if n.Status != apply.StatusReady {
			t.Errorf("node %s: %s (%v %s)", n.Name, n.Status, n.Err, n.Cause)
		}
	}
}

// checkOrder asserts from the events that every node started only after
// each node it comes after (dependencies and earlier groups) was ready, and
// that every node wrote exactly one ready line, its first line being
// apply/started.
func checkOrder(t *testing.T, p *plan.Plan, events []eventLine) {
	t.Helper()
	readyAt := map[string]int{}
	startedAt := map[string]int{}
	for i, ev := range events {
		switch {
		case ev.Phase == "apply" && ev.Status == "started":
			if _, dup := startedAt[ev.Node]; dup {
				t.Errorf("node %s started twice", ev.Node)
			}
			startedAt[ev.Node] = i
		case ev.Status == "ready":
			if _, dup := readyAt[ev.Node]; dup {
				t.Errorf("node %s has more than one ready line", ev.Node)
			}
			readyAt[ev.Node] = i
		}
		if ev.Time.IsZero() || ev.Time.Location() != time.UTC {
			t.Errorf("event %d time %v is not UTC RFC 3339", i, ev.Time)
		}
	}
	for _, s := range p.Nodes {
		si, ok := startedAt[s.Name]
		if !ok {
			t.Errorf("node %s has no started line", s.Name)
			continue
		}
		for i, ev := range events {
			if ev.Node == s.Name {
				if i != si {
					t.Errorf("node %s: first line is %s/%s, want apply/started", s.Name, ev.Phase, ev.Status)
				}
				break
			}
		}
		if _, ok := readyAt[s.Name]; !ok {
			t.Errorf("node %s has no ready line", s.Name)
		}
		for _, a := range s.After {
			ri, ok := readyAt[a]
			if !ok || ri > si {
				t.Errorf("node %s started (line %d) before %s was ready (line %d)", s.Name, si, a, ri)
			}
		}
		// The group barrier: every node of an earlier group is ready first.
		for _, e := range p.Nodes {
			if e.Stage < s.Stage {
				if ri, ok := readyAt[e.Name]; !ok || ri > si {
					t.Errorf("node %s (group %s) started (line %d) before %s of the earlier group %s was ready (line %d)", s.Name, s.Group, si, e.Name, e.Group, ri)
				}
			}
		}
	}
}

func checkNamespace(t *testing.T, cfg *rest.Config, p *plan.Plan) {
	t.Helper()
	c, _ := apply.NewClients(cfg)
	ns, err := c.Kube.CoreV1().Namespaces().Get(context.Background(), p.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{apply.LabelStack: p.Stack, apply.LabelEnv: p.Environment, apply.LabelManagedBy: apply.ManagedBy}
	if p.Slot != "" {
		want[apply.LabelSlot] = p.Slot
	}
	for k, v := range p.NamespaceLabels {
		want[k] = v
	}
	for k, v := range want {
		if ns.Labels[k] != v {
			t.Errorf("namespace %s label %s = %q, want %q", p.Namespace, k, ns.Labels[k], v)
		}
	}
}

func checkLeaseReleased(t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	c, _ := apply.NewClients(cfg)
	_, err := c.Kube.CoordinationV1().Leases(ns).Get(context.Background(), apply.LeaseName, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("lease %s/%s still there after the run (err %v)", ns, apply.LeaseName, err)
	}
}

func checkNoSecretValues(t *testing.T, value, logs string, events []eventLine) {
	t.Helper()
	if strings.Contains(logs, value) {
		t.Errorf("a secret value appears in the logs")
	}
	for _, ev := range events {
		if strings.Contains(ev.Message, value) || strings.Contains(strings.Join(ev.Objects, " "), value) {
			t.Errorf("a secret value appears in an event")
		}
	}
}

// resourceVersions reads the resourceVersion of the namespace, every
// planned object and every engine-owned Secret.
func resourceVersions(t *testing.T, cfg *rest.Config, p *plan.Plan) map[string]string {
	t.Helper()
	c, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out := map[string]string{}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["Namespace "+p.Namespace] = ns.ResourceVersion
	for _, s := range p.Secrets {
		sec, err := c.Kube.CoreV1().Secrets(p.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out["Secret "+s.Name] = sec.ResourceVersion
	}
	cm, err := c.Kube.CoreV1().ConfigMaps(p.Namespace).Get(ctx, apply.InventoryName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["inventory"] = cm.ResourceVersion
	for _, s := range p.Nodes {
		for _, o := range s.Objects {
			gvk := o.Object.GroupVersionKind()
			m, err := c.Mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
			if err != nil {
				t.Fatal(err)
			}
			ns := o.Namespace
			if m.Scope.Name() == "root" {
				ns = ""
			}
			u, err := c.Dynamic.Resource(m.Resource).Namespace(ns).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
			}
			out[o.Kind+" "+o.Namespace+"/"+o.Name] = u.GetResourceVersion()
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDeploySlot is what a platform worker calls: load a stack from its
// path and deploy one ai-slot namespace, the stack's own timeout applying.
func TestDeploySlot(t *testing.T) {
	cfg := testCluster(t)
	slot := uniquePrefix(t)
	target := apply.Target{
		Path: filepath.Join(repoRoot, "examples/new-project/services.yaml"),
		Env:  "ai-slot",
		Slot: slot,
	}
	cleanup(t, cfg, "shopfront-dev-"+slot)
	var events []apply.Event
	res, err := apply.Deploy(context.Background(), cfg, target, apply.Options{
		Observer: apply.ObserverFunc(func(e apply.Event) { events = append(events, e) }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Namespace != "shopfront-dev-"+slot || len(res.Failed()) > 0 || res.Created == 0 {
		t.Errorf("result %+v", res)
	}
	if len(events) == 0 {
		t.Errorf("no events reached the observer")
	}
	if _, err := apply.Deploy(context.Background(), cfg, apply.Target{Path: target.Path, Env: "ai-slot"}, apply.Options{}); !errors.Is(err, plan.ErrSlotRequired) {
		t.Errorf("deploy without a slot: %v, want ErrSlotRequired", err)
	}
}
