package plan

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// checkObjects enforces that no two nodes render the same object and, in slot
// environments, that nodes stay inside their namespace unless declared
// cluster-scoped.
func checkObjects(s *stack.Stack, p *Plan, slots bool) diag.List {
	var errs diag.List
	type owner struct {
		by, source string
		st         *Node
	}
	seen := map[string]owner{}
	for _, sec := range p.Secrets {
		seen[objectKey("", "Secret", p.Namespace, sec.Name)] = owner{by: "spec.secrets", source: s.File}
	}
	for _, st := range p.Nodes {
		for _, o := range st.Objects {
			gk := schema.FromAPIVersionAndKind(o.APIVersion, o.Kind).GroupKind()
			key := objectKey(gk.Group, gk.Kind, o.Namespace, o.Name)
			file := strings.SplitN(o.Source, "#", 2)[0]
			if prev, dup := seen[key]; dup {
				if prev.st == st {
					errs.AddHint(nodePos(s, st.Name, "manifests"), "render each object once: check for a copy, a symbolic link or two documents alike",
						"%s %s is rendered twice by node %s (%s and %s)", o.Kind, qualified(o), st.Name, prev.source, o.Source)
					continue
				}
				if prev.by == "node "+st.Name {
					continue // two nodes of one name: the loader reports the name
				}
				// Positioned at the node's manifests in services.yaml: that is
				// where the conflict is resolved (the rendered output has no
				// template line to point at).
				errs.AddHint(nodePos(s, st.Name, "manifests"), "each object must belong to exactly one node",
					"%s %s (%s) is rendered by node %s and also by %s (%s)", o.Kind, qualified(o), o.Source, st.Name, prev.by, prev.source)
				continue
			}
			seen[key] = owner{by: "node " + st.Name, source: o.Source, st: st}
			if slots && !st.ClusterScoped {
				switch {
				case o.Namespace == "":
					errs.AddHint(diag.Pos{File: file}, "set clusterScoped: true on the node if every slot may share it",
						"%s %s of node %s is cluster-scoped: in slot environment %s it would collide across slots", o.Kind, o.Name, st.Name, p.Environment)
				case o.Namespace != p.Namespace:
					errs.AddHint(diag.Pos{File: file}, "drop metadata.namespace or set clusterScoped: true on the node",
						"%s %s of node %s is in namespace %s, outside the slot namespace %s", o.Kind, o.Name, st.Name, o.Namespace, p.Namespace)
				}
			}
		}
	}
	return errs
}

func objectKey(group, kind, ns, name string) string {
	return group + "/" + kind + "/" + ns + "/" + name
}

func qualified(o *Object) string {
	if o.Namespace == "" {
		return o.Name
	}
	return o.Namespace + "/" + o.Name
}
