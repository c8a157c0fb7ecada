// Package bootstrap is the engine's part of preparing a clean server: the
// steps of spec.bootstrap, rendered with an environment's template context
// by the same renderer and partials as the manifests. `validate` checks them
// through servicescfg.Project.Validate; install (SSH, running the steps,
// markers of what has run) builds on this package.
//
// The model (stack.Bootstrap, stack.Step, stack.Variable) is decoded and
// validated with the rest of services.yaml in package stack. "Step" means a
// bootstrap step only; the vertices of a deployment plan are nodes.
package bootstrap

import (
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// Script is one rendered bootstrap step.
type Script struct {
	// Step is the step's name.
	Step string
	// Path is the template path relative to the stack root.
	Path string
	Data []byte
}

// Render renders the stack's bootstrap steps, in declared order, with an
// environment's template context (a plan's Context) and no .Service: the
// same renderer and partials as the manifests. Every problem is returned
// together as a diag.List.
func Render(s *stack.Stack, e *render.Engine, c render.Context) ([]Script, error) {
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
		data, err := e.RenderFile(st.Script, c)
		if err != nil {
			errs.Append(err)
			continue
		}
		out = append(out, Script{Step: st.Name, Path: st.Script, Data: data})
	}
	return out, errs.Err()
}
