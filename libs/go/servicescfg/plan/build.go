package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// What is wrong with a target: a *TargetError wraps one of these, so
// errors.Is works on it.
var (
	ErrUnknownEnvironment = errors.New("unknown environment")
	ErrSlotRequired       = errors.New("slot required")
	ErrSlotNotAllowed     = errors.New("slot not allowed")
	ErrInvalidSlot        = errors.New("invalid slot")
)

// TargetError says that a request names no valid target: an environment
// that is not declared, or a slot where the environment has none, none
// where it needs one, or one that is not a DNS label. It is the caller's
// mistake, not the stack's: a CLI maps it to a usage error and words it
// with its own flags.
type TargetError struct {
	// Err is ErrUnknownEnvironment, ErrSlotRequired, ErrSlotNotAllowed or
	// ErrInvalidSlot.
	Err  error
	Env  string
	Slot string
	// Declared are the declared environments, for ErrUnknownEnvironment.
	Declared []string
}

func (e *TargetError) Error() string {
	switch e.Err {
	case ErrUnknownEnvironment:
		return fmt.Sprintf("%v %q (declared: %s)", e.Err, e.Env, strings.Join(e.Declared, ", "))
	case ErrSlotRequired:
		return fmt.Sprintf("%v: environment %q is a slot environment", e.Err, e.Env)
	case ErrSlotNotAllowed:
		return fmt.Sprintf("%v: environment %q has no slots", e.Err, e.Env)
	case ErrInvalidSlot:
		return fmt.Sprintf("%v %q: a slot is a DNS label (lowercase letters, digits, '-')", e.Err, e.Slot)
	}
	return fmt.Sprintf("%v: environment %q, slot %q", e.Err, e.Env, e.Slot)
}

func (e *TargetError) Unwrap() error { return e.Err }

// Options select what to plan.
type Options struct {
	// Env names the environment.
	Env string
	// Slot names the slot; required exactly for slot environments.
	Slot string
	// Config holds the non-secret bootstrap variables (.Config).
	Config map[string]string
	// Engine renders templates; when nil, Build makes one from the stack's
	// partials. Pass one to render several environments with one parse.
	Engine *render.Engine
	// Parallel bounds concurrent rendering; GOMAXPROCS when zero.
	Parallel int
	// IdentityOnly leaves Object.Object nil. Every rendered document is
	// still read and checked, and each object's apiVersion, kind, name and
	// namespace are known: all that printing or validating a plan needs,
	// for far less memory. Applying a plan needs the objects.
	IdentityOnly bool
}

// EngineFor returns the renderer for a stack: its partials parsed once.
// Entries the loader has already reported (bad patterns, no match, outside
// the root) are left out, so that a stack with load errors still gets its
// templates checked and each problem is reported once.
func EngineFor(s *stack.Stack) (*render.Engine, error) {
	var partials []string
	var index []int
	for i, pat := range s.Spec.Templates.Partials {
		if files, err := s.Glob(pat); err == nil && len(files) > 0 {
			partials = append(partials, pat)
			index = append(index, i)
		}
	}
	opts := []render.Option{render.WithGlob(s.Glob), render.WithPositions(func(entry int) diag.Pos {
		return s.PosOf("spec", "templates", "partials", index[entry])
	})}
	if files, err := s.Files(); err == nil {
		// The loader's root and open folders; otherwise the engine opens
		// the root itself and reports why it cannot.
		opts = append(opts, render.WithFiles(files))
	}
	return render.New(s.Root, partials, opts...)
}

// Build resolves, renders and orders the stack for one environment. Problems
// in the stack's templates are returned together as a diag.List; a target
// that names no valid environment or slot is a *TargetError.
func Build(ctx context.Context, s *stack.Stack, opts Options) (*Plan, error) {
	renv, err := resolveTarget(s, opts)
	if err != nil {
		return nil, err
	}
	// One budget for every render of the plan (render.Limits).
	ctx = render.WithRun(ctx)
	engine := opts.Engine
	if engine == nil {
		if engine, err = EngineFor(s); err != nil {
			return nil, err
		}
	}
	b := newBuilder(ctx, s, opts, renv, engine)
	jobs := b.selectNodes(ctx)
	if err := b.errs.Err(); err != nil && b.p.Namespace == "" {
		return nil, err
	}
	if err := b.renderNodes(ctx, jobs); err != nil {
		return nil, err
	}
	b.errs = append(b.errs, checkObjects(s, b.p, renv.Slots)...)
	b.errs = append(b.errs, order(s, b.p)...)
	if err := b.errs.Err(); err != nil {
		return b.p, err
	}
	return b.p, nil
}

// resolveTarget resolves the environment opts names and checks the slot
// against it.
func resolveTarget(s *stack.Stack, opts Options) (*stack.ResolvedEnvironment, error) {
	env, ok := s.Spec.Environments[opts.Env]
	if !ok || env == nil {
		return nil, &TargetError{Err: ErrUnknownEnvironment, Env: opts.Env, Declared: s.EnvironmentNames()}
	}
	renv, err := s.ResolveEnvironment(opts.Env)
	if err != nil {
		return nil, err
	}
	switch {
	case renv.Slots && opts.Slot == "":
		return nil, &TargetError{Err: ErrSlotRequired, Env: opts.Env}
	case !renv.Slots && opts.Slot != "":
		return nil, &TargetError{Err: ErrSlotNotAllowed, Env: opts.Env, Slot: opts.Slot}
	case opts.Slot != "" && len(validation.IsDNS1123Label(opts.Slot)) > 0:
		return nil, &TargetError{Err: ErrInvalidSlot, Env: opts.Env, Slot: opts.Slot}
	}
	return renv, nil
}

// builder is one plan in the making: the target, its template context, and
// the problems found so far.
type builder struct {
	s      *stack.Stack
	opts   Options
	renv   *stack.ResolvedEnvironment
	rt     *stack.Runtime
	engine *render.Engine
	tctx   render.Context
	p      *Plan
	errs   diag.List
}

// job is one node taking part, rendered by a worker of renderNodes.
type job struct {
	node    *stack.Node
	overlay *stack.Overlay
	planned *Node
	errs    diag.List
}

// newBuilder sets up the template context, renders the namespace, and
// starts the plan with what the environment says.
func newBuilder(ctx context.Context, s *stack.Stack, opts Options, renv *stack.ResolvedEnvironment, engine *render.Engine) *builder {
	b := &builder{s: s, opts: opts, renv: renv, rt: renv.Runtime, engine: engine}
	if b.rt == nil {
		b.rt = &stack.Runtime{}
	}
	b.tctx = render.Context{
		Project:  s.Spec.Project,
		Env:      opts.Env,
		Slot:     opts.Slot,
		Versions: nonNil(renv.Versions),
		Vars:     nonNil(renv.Vars),
		Config:   nonNil(opts.Config),
		Runtime:  runtimeContext(renv.RuntimeName, b.rt),
	}
	b.tctx.Namespace = b.namespace(ctx)
	if b.tctx.Runtime.Workspace.Enabled && b.tctx.Runtime.Workspace.ClaimName == "" {
		b.tctx.Runtime.Workspace.ClaimName = "workspace"
	}
	b.p = &Plan{
		Stack:                s.Metadata.Name,
		Project:              s.Spec.Project,
		Environment:          opts.Env,
		Namespace:            b.tctx.Namespace,
		Slot:                 opts.Slot,
		Runtime:              renv.RuntimeName,
		HotReload:            b.rt.HotReload,
		Order:                slices.Clone(s.Spec.Deploy.Order),
		Timeout:              s.Spec.Deploy.Timeout.Duration,
		TTL:                  renv.TTL,
		Production:           renv.Production,
		NamespaceLabels:      renv.Labels,
		NamespaceAnnotations: renv.Annotations,
		Context:              b.tctx,
		Secrets:              secrets(s),
	}
	return b
}

// namespace renders the environment's namespaceTemplate and checks that
// it is a namespace name; "" when it could not be rendered.
func (b *builder) namespace(ctx context.Context) string {
	env := b.opts.Env
	pos := b.s.PosOf("spec", "environments", declaringEnv(b.s, env), "namespaceTemplate")
	ns, err := b.engine.RenderAt(ctx, pos, b.renv.NamespaceTemplate, b.tctx)
	if err != nil {
		b.errs.Append(withPrefix(err, "namespaceTemplate of environment "+env+": "))
		return ""
	}
	if ns = strings.TrimSpace(ns); len(validation.IsDNS1123Label(ns)) > 0 {
		b.errs.AddHint(pos, "namespaces are DNS labels: lowercase letters, digits and '-', at most 63 characters",
			"namespace %q rendered for environment %s is not a valid namespace name", ns, env)
	}
	return ns
}

// selectNodes decides which nodes take part, in declared order: those not
// disabled by an overlay whose when renders true. The others are listed
// in the plan as skipped.
func (b *builder) selectNodes(ctx context.Context) []*job {
	var jobs []*job
	for _, n := range b.s.Nodes() {
		ov := b.renv.Overlays[n.Name]
		if ov != nil && ov.Enabled != nil && !*ov.Enabled {
			b.p.Skipped = append(b.p.Skipped, Skipped{Name: n.Name, Reason: "disabled by overlay in " + b.opts.Env})
			continue
		}
		if n.When != "" && !b.when(ctx, n, ov) {
			continue
		}
		jobs = append(jobs, &job{node: n, overlay: ov})
	}
	return jobs
}

// when renders a node's when; false when it is false (the node is then
// skipped) or broken (the problem is noted).
func (b *builder) when(ctx context.Context, n *stack.Node, ov *stack.Overlay) bool {
	pos := nodePos(b.s, n.Name, "when")
	out, err := b.engine.RenderAt(ctx, pos, n.When, withService(b.tctx, n, ov, b.rt))
	if err != nil {
		b.errs.Append(withPrefix(err, "when of node "+n.Name+": "))
		return false
	}
	switch strings.TrimSpace(out) {
	case "true":
		return true
	case "false":
		b.p.Skipped = append(b.p.Skipped, Skipped{Name: n.Name, Reason: "when is false in " + b.opts.Env})
	default:
		b.errs.AddHint(pos, "a when template must render to true or false",
			"when of node %s rendered %q in environment %s", n.Name, strings.TrimSpace(out), b.opts.Env)
	}
	return false
}

// renderNodes renders every node's manifests, bounded in parallel, and
// adds the nodes to the plan in declared order, so that the plan stays
// deterministic.
func (b *builder) renderNodes(ctx context.Context, jobs []*job) error {
	par := b.opts.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	// A few long-lived workers rather than a goroutine per node: template
	// execution runs deep, and each new goroutine would grow its stack anew.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(par, len(jobs)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				j.planned, j.errs = renderNode(ctx, b.s, b.engine, withService(b.tctx, j.node, j.overlay, b.rt), j.node, j.overlay, b.p, b.opts.IdentityOnly)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, j := range jobs {
		b.errs = append(b.errs, j.errs...)
		if j.planned != nil {
			b.p.Nodes = append(b.p.Nodes, j.planned)
		}
	}
	return nil
}

// withPrefix says which value of services.yaml a template error is about.
func withPrefix(err error, prefix string) error {
	var in, out diag.List
	in.Append(err)
	for _, d := range in {
		c := *d
		c.Msg = prefix + c.Msg
		out = append(out, &c)
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func runtimeContext(name string, rt *stack.Runtime) render.Runtime {
	out := render.Runtime{Profile: name, HotReload: rt.HotReload}
	if w := rt.Workspace; w != nil {
		out.Workspace = render.Workspace{
			Enabled:      true,
			MountPath:    w.MountPath,
			Size:         w.Size,
			StorageClass: w.StorageClass,
			AccessMode:   w.AccessMode,
			ClaimName:    w.ClaimName,
		}
		if w.UID != nil {
			out.Workspace.UID = *w.UID
		}
		if w.GID != nil {
			out.Workspace.GID = *w.GID
		}
		if w.FSGroup != nil {
			out.Workspace.FSGroup = *w.FSGroup
		}
		if src := w.Source; src != nil {
			out.Workspace.Source = render.WorkspaceSource{Git: src.Git, Ref: src.Ref, CredentialsSecret: src.CredentialsSecret, Image: src.Image}
		}
	}
	return out
}

// withService returns the context for one node's templates.
func withService(c render.Context, n *stack.Node, ov *stack.Overlay, rt *stack.Runtime) render.Context {
	svc := &render.Service{
		Name:      n.Name,
		Group:     n.Group,
		Image:     n.Image,
		Kind:      n.Kind,
		DependsOn: slices.Clone(n.DependsOn),
		Vars:      map[string]string{},
		HotReload: rt.HotReload && (n.Kind == "go" || n.Kind == "frontend"),
	}
	if svc.DependsOn == nil {
		svc.DependsOn = []string{}
	}
	maps.Copy(svc.Vars, n.Vars)
	if ov != nil {
		if ov.Image != "" {
			svc.Image = ov.Image
		}
		maps.Copy(svc.Vars, ov.Vars)
	}
	c.Service = svc
	return c
}

// renderNode renders one node's manifests into a node of the plan.
func renderNode(ctx context.Context, s *stack.Stack, e *render.Engine, tctx render.Context, n *stack.Node, ov *stack.Overlay, p *Plan, identity bool) (*Node, diag.List) {
	var errs diag.List
	st := &Node{
		Name:           n.Name,
		Group:          n.Group,
		DependsOn:      slices.Clone(n.DependsOn),
		Infrastructure: n.Infrastructure,
		ClusterScoped:  n.ClusterScoped,
		Objects:        []*Object{},
	}
	if st.DependsOn == nil {
		st.DependsOn = []string{}
	}
	if r := n.Readiness; r != nil {
		if r.Timeout.Duration > 0 {
			st.Timeout = r.Timeout.Duration.String()
		}
		for _, c := range r.Conditions {
			status := c.Status
			if status == "" {
				status = "True"
			}
			st.Conditions = append(st.Conditions, Condition{Kind: c.Kind, Type: c.Type, Status: status})
		}
	}
	patterns := slices.Clone(n.Manifests)
	if ov != nil {
		patterns = append(patterns, ov.Manifests...)
	}
	seen := map[string]bool{}
	for _, pat := range patterns {
		files, err := s.Manifests(pat)
		if err != nil {
			// The loader reports bad patterns at their position.
			continue
		}
		for _, f := range files {
			if seen[f] {
				continue
			}
			seen[f] = true
			out, err := e.RenderFile(ctx, f, tctx)
			if err != nil {
				errs.Append(err)
				continue
			}
			st.Manifests = append(st.Manifests, &Manifest{Path: f, Data: out})
			var lines []int // template line per output line, found once, for problems only
			looked := false
			objs, derrs := decode(f, out, p.Namespace, identity, func(outLine int) int {
				if !looked {
					lines, _ = e.SourceMap(ctx, f, tctx)
					looked = true
				}
				if outLine < 1 || outLine > len(lines) {
					return 0
				}
				return lines[outLine-1]
			})
			errs = append(errs, derrs...)
			st.Objects = append(st.Objects, objs...)
		}
	}
	return st, errs
}

// declaringEnv follows from links to the environment that sets the
// namespaceTemplate, so its position can be reported.
func declaringEnv(s *stack.Stack, name string) string {
	seen := map[string]bool{}
	for name != "" && !seen[name] {
		seen[name] = true
		e := s.Spec.Environments[name]
		if e == nil || e.NamespaceTemplate != "" || e.From == "" {
			return name
		}
		name = e.From
	}
	return name
}

// nodePos positions a field of a node in services.yaml.
func nodePos(s *stack.Stack, name, field string) diag.Pos {
	return s.PosOf("spec", nodeSection(s, name), nodeIndex(s, name), field)
}

func nodeSection(s *stack.Stack, name string) string {
	if n := s.Node(name); n != nil && n.Infrastructure {
		return "infrastructure"
	}
	return "services"
}

func nodeIndex(s *stack.Stack, name string) int {
	list := s.Spec.Services
	if nodeSection(s, name) == "infrastructure" {
		list = s.Spec.Infrastructure
	}
	for i, n := range list {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// secrets describes spec.secrets without values, keys sorted.
func secrets(s *stack.Stack) []Secret {
	var out []Secret
	for _, sec := range s.Spec.Secrets {
		typ := sec.Type
		if typ == "" {
			typ = "Opaque"
		}
		ps := Secret{Name: sec.Name, Type: typ, Keys: []SecretKey{}}
		for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
			v := sec.Data[k]
			sk := SecretKey{Key: k}
			if v != nil {
				sk.FromConfig = v.FromConfig
				if v.Generate != nil {
					sk.Generate = v.Generate.Length
					if sk.Generate == 0 {
						sk.Generate = 32
					}
					sk.Charset = v.Generate.Charset
				}
			}
			ps.Keys = append(ps.Keys, sk)
		}
		out = append(out, ps)
	}
	return out
}
