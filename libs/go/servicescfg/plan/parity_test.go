package plan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// podShape is what runtime parity looks at in a go or frontend service's
// pod template: where its container's image comes from, whether it runs a
// dev command and whether it mounts the workspace.
type podShape struct {
	builtImage, devCommand, workspace bool
}

// devCommands are the watchers and dev servers a hot-reloading service runs.
var devCommands = []string{"air", "npm", "npx", "vite", "go run", "node "}

// shapeOf reads the pod template of one workload object, nil for objects
// without one (Services, ConfigMaps, ...).
func shapeOf(u *unstructured.Unstructured, node string, claims []string) (*podShape, error) {
	spec, ok, err := unstructured.NestedMap(u.Object, "spec", "template", "spec")
	if err != nil || !ok {
		return nil, err
	}
	out := &podShape{}
	vols, _, _ := unstructured.NestedSlice(spec, "volumes")
	for _, v := range vols {
		c, _, _ := unstructured.NestedString(v.(map[string]any), "persistentVolumeClaim", "claimName")
		out.workspace = out.workspace || slices.Contains(claims, c)
	}
	containers, _, _ := unstructured.NestedSlice(spec, "containers")
	for _, c := range containers {
		m := c.(map[string]any)
		if m["name"] != node {
			continue
		}
		image, _, _ := unstructured.NestedString(m, "image")
		out.builtImage = strings.Contains(image, "/"+node+":")
		cmd, _, _ := unstructured.NestedStringSlice(m, "command")
		args, _, _ := unstructured.NestedStringSlice(m, "args")
		line := strings.Join(append(cmd, args...), " ")
		out.devCommand = slices.ContainsFunc(devCommands, func(d string) bool {
			return strings.HasPrefix(line, d) || strings.Contains(line, " "+d) || strings.Contains(line, "&& "+d)
		})
		return out, nil
	}
	return nil, fmt.Errorf("%s %s has no container named %s", u.GetKind(), u.GetName(), node)
}

// TestRuntimeParityShapes renders both real stacks from the same templates
// in every environment: in production each go and frontend service runs its
// built image, without a dev command or the workspace; everywhere else it
// runs its dev command from the workspace.
func TestRuntimeParityShapes(t *testing.T) {
	for name, path := range realStacks {
		s := load(t, path)
		for _, tg := range targets {
			t.Run(name+"-"+tg.env+tg.slot, func(t *testing.T) {
				res, err := s.ResolveEnvironment(tg.env)
				if err != nil {
					t.Fatal(err)
				}
				p, err := Build(context.Background(), s, Options{Env: tg.env, Slot: tg.slot})
				if err != nil {
					t.Fatal(err)
				}
				want := podShape{builtImage: res.Production, devCommand: !res.Production, workspace: !res.Production}
				// Every claim any profile names: in production none is
				// declared, yet none may be mounted.
				claims := []string{"workspace"}
				for _, rt := range s.Spec.Runtime {
					if rt.Workspace != nil && rt.Workspace.ClaimName != "" {
						claims = append(claims, rt.Workspace.ClaimName)
					}
				}
				checked := 0
				for _, n := range p.Nodes {
					if k := s.Node(n.Name).Kind; k != stack.KindGo && k != stack.KindFrontend {
						continue
					}
					for _, o := range n.Objects {
						got, err := shapeOf(o.Object, n.Name, claims)
						if err != nil {
							t.Fatal(err)
						}
						if got == nil {
							continue
						}
						checked++
						if *got != want {
							t.Errorf("%s %s of %s: %+v, want %+v (production %v)", o.Kind, o.Name, n.Name, *got, want, res.Production)
						}
					}
				}
				if checked == 0 {
					t.Error("no go or frontend workload rendered")
				}
			})
		}
	}
}
