package apply_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// slotStack is a stack of its own (its name unique to the run, so that no
// other test's slots are in the way) with a slot environment of ttl 1h.
func slotStack(t *testing.T, prefix string) *stack.Stack {
	t.Helper()
	path := writeStack(t, t.TempDir(), map[string]string{
		"services.yaml": fmt.Sprintf(`apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: %[1]s}
spec:
  project: %[1]s
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    ai-slot: {from: dev, slots: true, ttl: 1h, namespaceTemplate: "{{ .Project }}-slot-{{ .Slot }}"}
  services:
    - {name: settings, manifests: [settings.yaml]}
`, prefix),
		"settings.yaml": configMapYAML("settings", map[string]string{"a": "1"}),
	})
	s, err := stack.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func slotPlan(t *testing.T, s *stack.Stack, slot string) *plan.Plan {
	t.Helper()
	p, err := plan.Build(context.Background(), s, plan.Options{Env: "ai-slot", Slot: slot})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func at(now time.Time) func() time.Time { return func() time.Time { return now } }

func namespace(t *testing.T, c *apply.Clients, name string) *corev1.Namespace {
	t.Helper()
	ns, err := c.Kube.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	return ns
}

// TestSlotExpiryRefresh reconciles a slot with a ttl at chosen times: the
// namespace is labelled as the stack's slot, expires-at is now + ttl, a
// reconcile moments later changes nothing, one later on moves expires-at.
func TestSlotExpiryRefresh(t *testing.T) {
	cfg := testCluster(t)
	c, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix(t)
	s := slotStack(t, prefix)
	p := slotPlan(t, s, "1")
	cleanup(t, cfg, p.Namespace)
	t0 := time.Date(2031, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		name      string
		now       time.Time
		ttl       time.Duration
		want      string
		noChanges bool
	}{
		{"first reconcile", t0, 0, "2031-05-01T11:00:00Z", false},
		{"ten seconds later: nothing changes", t0.Add(10 * time.Second), 0, "2031-05-01T11:00:00Z", true},
		{"half an hour later: refreshed", t0.Add(30 * time.Minute), 0, "2031-05-01T11:30:00Z", false},
		{"a shorter ttl takes effect at once", t0.Add(31 * time.Minute), 10 * time.Minute, "2031-05-01T10:41:00Z", false},
		{"no ttl: the annotation goes", t0.Add(32 * time.Minute), -1, "", false},
	} {
		t.Run(step.name, func(t *testing.T) {
			sp := *p
			switch {
			case step.ttl > 0:
				sp.TTL = step.ttl
			case step.ttl < 0:
				sp.TTL = 0
			}
			res, err := apply.ReconcileWith(context.Background(), c, &sp, apply.Options{Now: at(step.now), Holder: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if res.NoChanges() != step.noChanges {
				t.Errorf("NoChanges = %v, want %v: %+v", res.NoChanges(), step.noChanges, res.Objects)
			}
			ns := namespace(t, c, p.Namespace)
			if got := ns.Annotations[apply.AnnotationExpiresAt]; got != step.want {
				t.Errorf("expires-at = %q, want %q", got, step.want)
			}
			for k, v := range apply.SlotLabels(prefix, "ai-slot", "1") {
				if ns.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, ns.Labels[k], v)
				}
			}
		})
	}
}

// TestSlotDeleteAndPrune deletes one slot, refuses a namespace the stack
// does not own, and prunes the expired slots only: neither a live slot,
// nor one with an unreadable expiry, nor another stack's.
func TestSlotDeleteAndPrune(t *testing.T) {
	cfg := testCluster(t)
	c, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := uniquePrefix(t)
	s := slotStack(t, prefix)
	t0 := time.Now().UTC().Truncate(time.Second)
	plans := map[string]*plan.Plan{}
	for _, slot := range []string{"1", "2", "3", "4"} {
		plans[slot] = slotPlan(t, s, slot)
		cleanup(t, cfg, plans[slot].Namespace)
	}
	// Slot 1 expires in an hour, slot 2 expired an hour ago, slot 3 has
	// an expiry nobody can read.
	for slot, now := range map[string]time.Time{"1": t0, "2": t0.Add(-2 * time.Hour), "3": t0} {
		if _, err := apply.ReconcileWith(ctx, c, plans[slot], apply.Options{Now: at(now), Holder: "test"}); err != nil {
			t.Fatalf("slot %s: %v", slot, err)
		}
	}
	ns3 := namespace(t, c, plans["3"].Namespace)
	ns3.Annotations[apply.AnnotationExpiresAt] = "soon"
	if _, err := c.Kube.CoreV1().Namespaces().Update(ctx, ns3, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another stack's expired slot, and a namespace made by hand where
	// slot 4 would go.
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        prefix + "-other-slot-9",
		Labels:      apply.SlotLabels(prefix+"-other", "ai-slot", "9"),
		Annotations: map[string]string{apply.AnnotationExpiresAt: t0.Add(-time.Hour).Format(time.RFC3339)},
	}}
	byHand := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plans["4"].Namespace, Labels: map[string]string{"team": "x"}}}
	for _, ns := range []*corev1.Namespace{other, byHand} {
		if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cleanup(t, cfg, other.Name)

	t.Run("delete refuses a namespace the stack does not own", func(t *testing.T) {
		_, err := apply.DeleteSlotWith(ctx, c, plans["4"], apply.SlotOptions{})
		var notOwned *apply.NotOwnedError
		if !errors.As(err, &notOwned) || !errors.Is(err, apply.ErrNotOwned) {
			t.Fatalf("err = %v, want a *NotOwnedError", err)
		}
		want := fmt.Sprintf("namespace %[1]s-slot-4 is not a slot namespace of this stack (app.kubernetes.io/managed-by=(absent), want codex-bootstrap; "+
			"codex-k8s.dev/env=(absent), want ai-slot; codex-k8s.dev/slot=(absent), want 4; codex-k8s.dev/stack=(absent), want %[1]s): "+
			"refusing to delete it; delete it with kubectl if it really is to go", prefix)
		if err.Error() != want {
			t.Errorf("message:\n got %s\nwant %s", err, want)
		}
		if ns := namespace(t, c, byHand.Name); ns.DeletionTimestamp != nil {
			t.Error("the namespace is being deleted")
		}
	})

	t.Run("prune --dry-run deletes nothing", func(t *testing.T) {
		res, err := apply.PruneExpiredWith(ctx, c, s, "ai-slot", apply.SlotOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := slotsOf(res.Deleted); !slices.Equal(got, []string{"2"}) {
			t.Errorf("would delete slots %v, want [2]", got)
		}
		if ns := namespace(t, c, plans["2"].Namespace); ns.DeletionTimestamp != nil {
			t.Error("a dry run deleted slot 2")
		}
	})

	t.Run("prune deletes the expired slot only", func(t *testing.T) {
		res, err := apply.PruneExpiredWith(ctx, c, s, "ai-slot", apply.SlotOptions{Wait: true, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got := slotsOf(res.Deleted); !slices.Equal(got, []string{"2"}) {
			t.Errorf("deleted slots %v, want [2]", got)
		}
		if got := slotsOf(res.Kept); !slices.Equal(got, []string{"1", "3"}) {
			t.Errorf("kept slots %v, want [1 3]", got)
		}
		for _, k := range res.Kept {
			if k.Slot == "3" && k.Problem != `annotation codex-k8s.dev/expires-at="soon" is not an RFC 3339 time` {
				t.Errorf("slot 3 problem = %q", k.Problem)
			}
		}
		if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, plans["2"].Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("slot 2 after prune with Wait: %v, want not found", err)
		}
		if ns := namespace(t, c, other.Name); ns.DeletionTimestamp != nil {
			t.Error("prune deleted another stack's slot")
		}
	})

	t.Run("delete removes the slot, then finds nothing", func(t *testing.T) {
		res, err := apply.DeleteSlotWith(ctx, c, plans["1"], apply.SlotOptions{Wait: true, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Deleted) != 1 || res.Deleted[0].Namespace != plans["1"].Namespace || res.Absent {
			t.Errorf("result %+v", res)
		}
		again, err := apply.DeleteSlotWith(ctx, c, plans["1"], apply.SlotOptions{})
		if err != nil || !again.Absent {
			t.Errorf("second delete: %+v, %v; want Absent", again, err)
		}
	})

	t.Run("undeploy by target, as a worker would", func(t *testing.T) {
		target := apply.Target{Path: s.Path, Env: "ai-slot", Slot: "3"}
		res, err := apply.Undeploy(ctx, cfg, target, apply.SlotOptions{})
		if err != nil || len(res.Deleted) != 1 || res.Deleted[0].Namespace != plans["3"].Namespace {
			t.Errorf("Undeploy slot 3: %+v, %v", res, err)
		}
		target.Slot = ""
		if _, err := apply.Undeploy(ctx, cfg, target, apply.SlotOptions{}); err == nil || !strings.Contains(err.Error(), "slot") {
			t.Errorf("Undeploy without a slot: %v", err)
		}
	})

	t.Run("not a slot environment", func(t *testing.T) {
		if _, err := apply.PruneExpiredWith(ctx, c, s, "dev", apply.SlotOptions{}); err == nil {
			t.Error("prune of dev: no error")
		}
		dev, err := plan.Build(ctx, s, plan.Options{Env: "dev"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apply.DeleteSlotWith(ctx, c, dev, apply.SlotOptions{}); err == nil {
			t.Error("delete of dev: no error")
		}
	})
}

func slotsOf(l []apply.SlotNamespace) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.Slot)
	}
	slices.Sort(out)
	return out
}
