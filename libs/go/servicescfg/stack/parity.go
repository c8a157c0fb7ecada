package stack

import (
	"slices"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// parityHint is the rule every parity problem names.
const parityHint = "runtime parity: production never hot-reloads nor mounts a workspace, " +
	"every other environment hot-reloads its go and frontend services from one"

// parity checks one environment against the runtime parity rule: a
// production environment (IsProduction) has a runtime profile without
// hotReload and without a workspace; any other environment that deploys go
// or frontend services has one with hotReload: true and a workspace. The
// prod profile's own hotReload is reported once, at the profile (runtimes).
func (v *validator) parity(name string, eff envSummary) {
	rt := v.s.Spec.Runtime[eff.runtime]
	if rt == nil {
		return // an unknown profile, reported by environments
	}
	// Where a problem is reported, looked up only then.
	at := func() diag.Pos {
		p := []any{"spec", "environments", name}
		if e := v.s.Spec.Environments[name]; e != nil && e.Runtime != "" {
			return v.pos(append(p, "runtime")...)
		}
		return v.keyPos(p...)
	}
	label := "environment " + quote(name)
	profile := "runtime profile " + quote(eff.runtime)
	if IsProduction(name, eff.runtime, eff.production) {
		var bad []string
		if rt.HotReload && eff.runtime != RuntimeProd {
			bad = append(bad, "enables hotReload")
		}
		if rt.Workspace != nil && eff.runtime != RuntimeProd {
			bad = append(bad, "declares a workspace")
		}
		if len(bad) > 0 {
			v.errs.AddHint(at(), parityHint+"; use runtime: prod or a profile without them",
				"%s is production (%s) but its %s %s", label, v.productionReason(name, eff), profile, strings.Join(bad, " and "))
		}
		return
	}
	var missing []string
	if !rt.HotReload {
		missing = append(missing, "hotReload: true")
	}
	if rt.Workspace == nil {
		missing = append(missing, "a workspace")
	}
	if len(missing) == 0 {
		return
	}
	if node := v.reloadable(eff); node != nil {
		v.errs.AddHint(at(), parityHint+"; set them on the profile, or mark the environment production: true",
			"%s deploys %s service %q but its %s lacks %s", label, node.Kind, node.Name, profile, strings.Join(missing, " and "))
	}
}

// productionReason says why an environment counts as production.
func (v *validator) productionReason(name string, eff envSummary) string {
	switch {
	case name == RuntimeProd:
		return "it is named " + RuntimeProd
	case eff.runtime == RuntimeProd:
		return "its runtime is " + RuntimeProd
	default:
		return "production: true"
	}
}

// reloadable returns the first go or frontend node the environment deploys
// (its overlays may disable some), or nil.
func (v *validator) reloadable(eff envSummary) *Node {
	i := slices.IndexFunc(v.s.Nodes(), func(n *Node) bool {
		if n.Kind != KindGo && n.Kind != KindFrontend {
			return false
		}
		on, set := eff.enabled[n.Name]
		return !set || on
	})
	if i < 0 {
		return nil
	}
	return v.s.Nodes()[i]
}

// ttl checks an environment's ttl: positive, on a slot environment.
func (v *validator) ttl(name string, e *Environment, eff envSummary) {
	if e.TTL.Duration == 0 {
		return
	}
	at := v.pos("spec", "environments", name, "ttl")
	if e.TTL.Duration < 0 {
		v.errs.Add(at, "ttl of environment %q must not be negative", name)
		return
	}
	// (An environment that cannot resolve, reported already, is not.)
	resolves := eff.namespaceTemplate != "" && v.s.Spec.Runtime[eff.runtime] != nil
	if resolves && (eff.slots == nil || !*eff.slots) {
		v.errs.AddHint(at, "set slots: true, or drop ttl: only slot namespaces expire",
			"environment %q sets ttl but is not a slot environment", name)
	}
}
