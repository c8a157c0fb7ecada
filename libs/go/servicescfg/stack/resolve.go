package stack

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrUnknownEnvironment is wrapped by ResolveEnvironment for a name the stack
// does not declare.
var ErrUnknownEnvironment = errors.New("unknown environment")

// ErrInvalidEnvironment is wrapped by ResolveEnvironment for an environment
// that cannot be resolved: a from cycle, an unknown from or runtime profile,
// or no runtime or namespaceTemplate. Load reports the same problems with
// their positions.
var ErrInvalidEnvironment = errors.New("invalid environment")

// ResolvedEnvironment is an environment with its from chain applied: what
// the planner and the renderer use.
type ResolvedEnvironment struct {
	// Name is the environment's own name ("ai-slot", not its parent).
	Name string
	// Chain is the environment followed by its ancestors through from.
	Chain []string
	// RuntimeName is the runtime profile name; Runtime is the profile.
	RuntimeName string
	Runtime     *Runtime
	// NamespaceTemplate renders the namespace.
	NamespaceTemplate string
	// Slots is true for a per-task environment.
	Slots bool
	// Production is true for a production environment (see IsProduction).
	Production bool
	// TTL is how long a slot lives after its last reconcile; zero: forever.
	TTL time.Duration
	// Vars and Versions are the stack's overlaid by the chain's, nearest
	// last; Labels and Annotations merge along the chain alone.
	Vars        map[string]string
	Versions    map[string]string
	Labels      map[string]string
	Annotations map[string]string
	// Overlays are merged per node along the chain.
	Overlays map[string]*Overlay
}

// ResolveEnvironment applies from inheritance to one environment: the
// child's settings override the parent's, maps merge key by key, and
// overlays merge per node (Enabled and Image when set, Vars key by key,
// Manifests replaced when the child lists any, an explicit empty list
// included). The result shares nothing with the stack.
func (s *Stack) ResolveEnvironment(name string) (*ResolvedEnvironment, error) {
	if _, ok := s.Spec.Environments[name]; !ok {
		return nil, fmt.Errorf("%w %q (declared: %s)", ErrUnknownEnvironment, name, strings.Join(s.EnvironmentNames(), ", "))
	}
	chain, err := s.chain(name)
	if err != nil {
		return nil, fmt.Errorf("environment %q: %w: %w", name, ErrInvalidEnvironment, err)
	}
	eff := merge(chain)
	r := &ResolvedEnvironment{
		Name:              name,
		RuntimeName:       eff.Runtime,
		NamespaceTemplate: eff.NamespaceTemplate,
		Slots:             eff.Slots != nil && *eff.Slots,
		Production:        IsProduction(name, eff.Runtime, eff.Production),
		TTL:               eff.TTL.Duration,
		Vars:              overlay(s.Spec.Vars, eff.Vars),
		Versions:          overlay(s.Spec.Versions, eff.Versions),
		Labels:            overlay(nil, eff.Labels),
		Annotations:       overlay(nil, eff.Annotations),
		Overlays:          eff.Overlays,
	}
	for _, c := range chain {
		r.Chain = append(r.Chain, c.name)
	}
	switch {
	case eff.Runtime == "":
		return nil, fmt.Errorf("environment %q has no runtime: %w", name, ErrInvalidEnvironment)
	case eff.NamespaceTemplate == "":
		return nil, fmt.Errorf("environment %q has no namespaceTemplate: %w", name, ErrInvalidEnvironment)
	}
	rt := s.Spec.Runtime[eff.Runtime]
	if rt == nil {
		return nil, fmt.Errorf("environment %q uses unknown runtime profile %q: %w", name, eff.Runtime, ErrInvalidEnvironment)
	}
	r.Runtime = cloneRuntime(rt)
	return r, nil
}

type named struct {
	name string
	env  *Environment
}

// chain returns an environment and its ancestors, nearest first. A cycle
// is returned as a *cycleError starting from its smallest name.
func (s *Stack) chain(name string) ([]named, error) {
	var out []named
	at := map[string]int{}
	for {
		if i, seen := at[name]; seen {
			loop := make([]string, 0, len(out)-i+1)
			for _, c := range out[i:] {
				loop = append(loop, c.name)
			}
			m := slices.Index(loop, slices.Min(loop))
			loop = append(loop[m:], loop[:m]...)
			return nil, &cycleError{cycle: append(loop, loop[0])}
		}
		e, ok := s.Spec.Environments[name]
		if !ok {
			return nil, fmt.Errorf("%q inherits from unknown environment %q", out[len(out)-1].name, name)
		}
		if e == nil {
			e = &Environment{}
		}
		at[name] = len(out)
		out = append(out, named{name, e})
		if e.From == "" {
			return out, nil
		}
		name = e.From
	}
}

// merge folds a chain (nearest first) into one Environment, nearest winning.
// The result is built in place, each entry of the chain copied once: the
// cost is linear in the chain and what it declares (a chain of a thousand
// environments each adding a key took minutes when every step copied what
// the steps before had gathered).
func merge(chain []named) *Environment {
	eff := &Environment{}
	into := func(dst *map[string]string, src map[string]string) {
		if *dst == nil {
			*dst = map[string]string{}
		}
		maps.Copy(*dst, src)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		e := chain[i].env
		if e.Runtime != "" {
			eff.Runtime = e.Runtime
		}
		if e.NamespaceTemplate != "" {
			eff.NamespaceTemplate = e.NamespaceTemplate
		}
		if e.Slots != nil {
			eff.Slots = e.Slots
		}
		if e.Production != nil {
			eff.Production = e.Production
		}
		if e.TTL.Duration != 0 {
			eff.TTL = e.TTL
		}
		into(&eff.Vars, e.Vars)
		into(&eff.Versions, e.Versions)
		into(&eff.Labels, e.Labels)
		into(&eff.Annotations, e.Annotations)
		for node, ov := range e.Overlays {
			if eff.Overlays == nil {
				eff.Overlays = map[string]*Overlay{}
			}
			if eff.Overlays[node] == nil {
				eff.Overlays[node] = &Overlay{}
			}
			mergeOverlayInto(eff.Overlays[node], ov)
		}
	}
	return eff
}

// IsProduction reports whether an environment is production: the one named
// prod, one with the prod runtime profile, or one marked production: true
// (production, as set along its from chain, nil when unset). A production
// environment never hot-reloads nor mounts a workspace.
func IsProduction(env, runtime string, production *bool) bool {
	return env == RuntimeProd || runtime == RuntimeProd || (production != nil && *production)
}

// envSummary is what the validator needs of an environment's chain.
type envSummary struct {
	runtime, namespaceTemplate string
	production, slots          *bool
	// enabled holds the overlays' enabled switches along the chain, by
	// node (shared with the environment it comes from until it sets one).
	enabled map[string]bool
	// broken: the chain runs into a cycle or an unknown environment.
	broken bool
}

// summarize walks the from chains of every environment once, each
// environment visited once whatever the length of the chains: the
// effective runtime and namespaceTemplate of each, and the cycles (each
// once, starting from its smallest name and ending where it starts).
func (s *Stack) summarize() (map[string]envSummary, [][]string) {
	envs := s.Spec.Environments
	out := make(map[string]envSummary, len(envs))
	var cycles [][]string
	for _, start := range s.EnvironmentNames() {
		var path []string // this walk, nearest first
		at := map[string]int{}
		var base envSummary
		for name := start; ; {
			if sum, done := out[name]; done {
				base = sum
				break
			}
			if i, seen := at[name]; seen {
				loop := slices.Clone(path[i:])
				m := slices.Index(loop, slices.Min(loop))
				loop = append(loop[m:], loop[:m]...)
				cycles = append(cycles, append(loop, loop[0]))
				base = envSummary{broken: true}
				break
			}
			e, ok := envs[name]
			if !ok {
				base = envSummary{broken: true}
				break
			}
			at[name] = len(path)
			path = append(path, name)
			if e == nil || e.From == "" {
				break
			}
			name = e.From
		}
		for i := len(path) - 1; i >= 0; i-- {
			if e := envs[path[i]]; e != nil && !base.broken {
				base.runtime = cmp.Or(e.Runtime, base.runtime)
				base.namespaceTemplate = cmp.Or(e.NamespaceTemplate, base.namespaceTemplate)
				if e.Production != nil {
					base.production = e.Production
				}
				if e.Slots != nil {
					base.slots = e.Slots
				}
				base.enabled = overlayEnabled(base.enabled, e.Overlays)
			}
			out[path[i]] = base
		}
	}
	return out, cycles
}

// overlayEnabled is base with the enabled switches of overlays over it:
// base itself when they set none, else a copy.
func overlayEnabled(base map[string]bool, overlays map[string]*Overlay) map[string]bool {
	out, copied := base, false
	for node, ov := range overlays {
		if ov == nil || ov.Enabled == nil {
			continue
		}
		if !copied {
			out, copied = make(map[string]bool, len(base)+1), true
			maps.Copy(out, base)
		}
		out[node] = *ov.Enabled
	}
	return out
}

// overlay returns a new map: base with top's entries over it.
func overlay(base, top map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(top))
	maps.Copy(out, base)
	maps.Copy(out, top)
	return out
}

// mergeOverlayInto applies a child's overlay over out, in place.
func mergeOverlayInto(out, o *Overlay) {
	if o == nil {
		return
	}
	if o.Enabled != nil {
		b := *o.Enabled
		out.Enabled = &b
	}
	if o.Image != "" {
		out.Image = o.Image
	}
	if o.Manifests != nil {
		out.Manifests = slices.Clone(o.Manifests)
	}
	if o.Vars != nil {
		if out.Vars == nil {
			out.Vars = map[string]string{}
		}
		maps.Copy(out.Vars, o.Vars)
	}
}

func cloneRuntime(rt *Runtime) *Runtime {
	out := *rt
	if w := rt.Workspace; w != nil {
		cw := *w
		cw.UID, cw.GID, cw.FSGroup = clonePtr(w.UID), clonePtr(w.GID), clonePtr(w.FSGroup)
		cw.Source = clonePtr(w.Source)
		out.Workspace = &cw
	}
	return &out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
