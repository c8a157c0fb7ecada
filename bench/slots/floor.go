package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// floorLabel marks what the floor phase applies, so that one list per
// kind finds it across the slots' namespaces.
const floorLabel = "bench.codex-k8s.dev/floor"

// floorKinds are the kinds the floor phase waits for.
var floorKinds = []schema.GroupVersionResource{
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
}

// floor puts every object of ps into the cluster with the fewest requests
// any client could use: one server-side apply each, every slot at once,
// with no read before, no order between nodes and no wait between them;
// the engine-owned Secrets are left out (nothing on a kwok node reads
// them). It then lists the workloads every 50 ms until all are ready and
// returns the time from the first apply to that. What the cluster itself
// needs for the slots' pods is the part of a reconcile no engine can
// remove: 20 slots cannot take less than this on the same machine.
func floor(ctx context.Context, c *apply.Clients, ps []*plan.Plan, mark string) (time.Duration, error) {
	start := time.Now()
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i] = applyAll(ctx, c, p, mark) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	for {
		ready, err := floorReady(ctx, c, mark)
		if err != nil {
			return 0, err
		}
		if ready {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// applyAll applies the slot's namespace, then each object of its plan in
// plan order, labelled with mark.
func applyAll(ctx context.Context, c *apply.Clients, p *plan.Plan, mark string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(p.Namespace)
	objs := []*unstructured.Unstructured{ns}
	for _, n := range p.Nodes {
		for _, o := range n.Objects {
			objs = append(objs, o.Object)
		}
	}
	for _, in := range objs {
		u := in.DeepCopy()
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[floorLabel] = mark
		u.SetLabels(labels)
		m, err := c.Mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		ri := c.Dynamic.Resource(m.Resource).Namespace(u.GetNamespace())
		if _, err := ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "bench-floor", Force: true}); err != nil {
			return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	return nil
}

// floorReady lists each kind once across namespaces and tells whether
// every object marked is ready: kstatus Current, a Job complete.
func floorReady(ctx context.Context, c *apply.Clients, mark string) (bool, error) {
	for _, gvr := range floorKinds {
		list, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: floorLabel + "=" + mark})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			u := &list.Items[i]
			if gvr.Resource == "jobs" {
				if !jobComplete(u) {
					return false, nil
				}
				continue
			}
			res, err := status.Compute(u)
			if err != nil || res.Status != status.CurrentStatus {
				return false, nil
			}
		}
	}
	return true, nil
}

func jobComplete(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Complete" && m["status"] == "True" {
			return true
		}
	}
	return false
}
