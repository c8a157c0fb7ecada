package plan

import (
	"context"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// Script is one rendered bootstrap step.
type Script struct {
	Step string
	// Path is the template path relative to the stack root.
	Path string
	Data []byte
}

// RenderScripts renders the stack's bootstrap step scripts, in declared
// order, with an environment's template context (a plan's Context) and no
// .Service: the same renderer and partials as the manifests. Every problem is
// returned together as a diag.List.
func RenderScripts(ctx context.Context, s *stack.Stack, e *render.Engine, c render.Context) ([]Script, error) {
	if s.Spec.Bootstrap == nil {
		return nil, nil
	}
	c.Service = nil
	var errs diag.List
	var out []Script
	for _, st := range s.Spec.Bootstrap.Steps {
		if files, err := s.Glob(st.Script); err != nil || len(files) != 1 {
			// The loader reports a script that is missing, a pattern or
			// outside the root, at its position in services.yaml.
			continue
		}
		data, err := e.RenderFile(ctx, st.Script, c)
		if err != nil {
			errs.Append(err)
			continue
		}
		out = append(out, Script{Step: st.Name, Path: st.Script, Data: data})
	}
	return out, errs.Err()
}
