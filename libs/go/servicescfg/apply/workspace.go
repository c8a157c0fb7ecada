package apply

import (
	"context"
	"fmt"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/workspace"
)

// populateWorkspace fills the environment's workspace from its git source
// (spec.runtime.<name>.workspace.source) once the node that applies the
// workspace claim is ready, before the nodes after it start: the services
// start with their sources. A workspace that has sources is left alone.
func (e *reconcileRun) populateWorkspace(ctx context.Context, n *plan.Node) error {
	spec, ok := workspace.SpecOf(e.p)
	if !ok || spec.Source.Git == "" || !appliesClaim(n, spec.ClaimName) {
		return nil
	}
	e.log.Info("filling the workspace from its git source", "node", n.Name, "claim", spec.ClaimName, "git", spec.Source.Git, "ref", spec.Source.Ref)
	if err := workspace.Populate(ctx, e.c.Kube, spec, workspace.SchedulingFor(e.p, spec.ClaimName)); err != nil {
		return fmt.Errorf("workspace source: %w", err)
	}
	return nil
}

func appliesClaim(n *plan.Node, claim string) bool {
	for _, o := range n.Objects {
		if o.Kind == "PersistentVolumeClaim" && o.APIVersion == "v1" && o.Name == claim {
			return true
		}
	}
	return false
}
