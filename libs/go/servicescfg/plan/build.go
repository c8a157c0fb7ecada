package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// NewEngine returns the renderer for a stack: its partials parsed once.
// Entries the loader has already reported (bad patterns, no match, outside
// the root) are left out, so that a stack with load errors still gets its
// templates checked and each problem is reported once.
func NewEngine(s *stack.Stack) (*render.Engine, error) {
	var partials []string
	var index []int
	for i, pat := range s.Spec.Templates.Partials {
		if files, err := s.Glob(pat); err == nil && len(files) > 0 {
			partials = append(partials, pat)
			index = append(index, i)
		}
	}
	return render.New(s.Root, partials, render.WithGlob(s.Glob), render.WithPositions(func(entry int) diag.Pos {
		return s.PosOf("spec", "templates", "partials", index[entry])
	}))
}

// Build resolves, renders and orders the stack for one environment. Problems
// in the stack's templates are returned together as a diag.List; usage
// problems (unknown environment, slot rules) wrap the Err* values above.
func Build(ctx context.Context, s *stack.Stack, opts Options) (*Plan, error) {
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
	engine := opts.Engine
	if engine == nil {
		if engine, err = NewEngine(s); err != nil {
			return nil, err
		}
	}

	rt := renv.Runtime
	if rt == nil {
		rt = &stack.Runtime{}
	}
	tctx := render.Context{
		Project:  s.Spec.Project,
		Env:      opts.Env,
		Slot:     opts.Slot,
		Versions: nonNil(renv.Versions),
		Vars:     nonNil(renv.Vars),
		Config:   nonNil(opts.Config),
		Runtime:  runtimeContext(renv.RuntimeName, rt),
	}
	var errs diag.List
	nsPos := s.PosOf("spec", "environments", declaringEnv(s, opts.Env), "namespaceTemplate")
	ns, err := engine.RenderAt(nsPos, renv.NamespaceTemplate, tctx)
	if err != nil {
		errs.Append(withPrefix(err, "namespaceTemplate of environment "+opts.Env+": "))
	} else if ns = strings.TrimSpace(ns); len(validation.IsDNS1123Label(ns)) > 0 {
		errs.AddHint(nsPos, "namespaces are DNS labels: lowercase letters, digits and '-', at most 63 characters",
			"namespace %q rendered for environment %s is not a valid namespace name", ns, opts.Env)
	}
	tctx.Namespace = ns
	if tctx.Runtime.Workspace.Enabled && tctx.Runtime.Workspace.ClaimName == "" {
		tctx.Runtime.Workspace.ClaimName = "workspace"
	}

	p := &Plan{
		Stack:                s.Metadata.Name,
		Project:              s.Spec.Project,
		Environment:          opts.Env,
		Namespace:            ns,
		Slot:                 opts.Slot,
		Runtime:              renv.RuntimeName,
		HotReload:            rt.HotReload,
		Order:                slices.Clone(s.Spec.Deploy.Order),
		Timeout:              s.Spec.Deploy.Timeout.Duration,
		NamespaceLabels:      renv.Labels,
		NamespaceAnnotations: renv.Annotations,
		Context:              tctx,
	}
	p.Secrets = secrets(s)

	// Decide which nodes take part, in declared order.
	type work struct {
		node    *stack.Node
		overlay *stack.Overlay
		step    *Step
		errs    diag.List
	}
	var jobs []*work
	for _, n := range s.Nodes() {
		ov := renv.Overlays[n.Name]
		if ov != nil && ov.Enabled != nil && !*ov.Enabled {
			p.Skipped = append(p.Skipped, Skipped{Name: n.Name, Reason: "disabled by overlay in " + opts.Env})
			continue
		}
		if n.When != "" {
			pos := nodePos(s, n.Name, "when")
			out, err := engine.RenderAt(pos, n.When, withService(tctx, n, ov, rt))
			if err != nil {
				errs.Append(withPrefix(err, "when of node "+n.Name+": "))
				continue
			}
			switch strings.TrimSpace(out) {
			case "true":
			case "false":
				p.Skipped = append(p.Skipped, Skipped{Name: n.Name, Reason: "when is false in " + opts.Env})
				continue
			default:
				errs.AddHint(pos, "a when template must render to true or false",
					"when of node %s rendered %q in environment %s", n.Name, strings.TrimSpace(out), opts.Env)
				continue
			}
		}
		jobs = append(jobs, &work{node: n, overlay: ov})
	}
	if err := errs.Err(); err != nil && ns == "" {
		return nil, err
	}

	// Render every node's manifests, bounded in parallel; results keep
	// declared order so the plan stays deterministic.
	par := opts.Parallel
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
				w := jobs[i]
				w.step, w.errs = renderNode(s, engine, withService(tctx, w.node, w.overlay, rt), w.node, w.overlay, p, opts.IdentityOnly)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, w := range jobs {
		errs = append(errs, w.errs...)
		if w.step != nil {
			p.Steps = append(p.Steps, w.step)
		}
	}

	errs = append(errs, checkObjects(s, p, renv.Slots)...)
	errs = append(errs, order(s, p)...)
	if err := errs.Err(); err != nil {
		return p, err
	}
	return p, nil
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

// renderNode renders one node's manifests into a step.
func renderNode(s *stack.Stack, e *render.Engine, tctx render.Context, n *stack.Node, ov *stack.Overlay, p *Plan, identity bool) (*Step, diag.List) {
	var errs diag.List
	st := &Step{
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
			out, err := e.RenderFile(f, tctx)
			if err != nil {
				errs.Append(err)
				continue
			}
			st.Manifests = append(st.Manifests, &Manifest{Path: f, Data: out})
			var lines []int // template line per output line, found once, for problems only
			looked := false
			objs, derrs := decode(f, out, p.Namespace, identity, func(outLine int) int {
				if !looked {
					lines, _ = e.SourceMap(f, tctx)
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

// decode splits a rendered manifest into objects. Empty documents (a template
// that rendered nothing) are skipped. source maps a line of the rendered
// output to the template line that wrote it (0 when unknown), for the
// position of a problem; it is called only for problems.
func decode(file string, data []byte, namespace string, identity bool, source func(outLine int) int) ([]*Object, diag.List) {
	var errs diag.List
	var out []*Object
	at := func(outLine int) diag.Pos {
		pos := diag.Pos{File: file}
		if source != nil && outLine > 0 {
			pos.Line = source(outLine)
		}
		return pos
	}
	for i, doc := range splitDocuments(data) {
		if !hasContent(doc.data) {
			continue
		}
		where := fmt.Sprintf("rendered document %d (line %d of the rendered output)", i+1, doc.line)
		obj, err := decodeDocument(doc.data, identity)
		if err != nil {
			msg, line := yamlProblem(err, data, i+1, doc.line)
			hint := "check the YAML the template renders"
			if line > 0 {
				hint = "the quoted line is as rendered: check the indentation (nindent, indent) and the --- between documents that the template gives it"
			}
			errs.AddHint(at(line), hint, "%s", msg)
			continue
		}
		// Placed at the template line that wrote the document: found by
		// rendering again, so only for a problem.
		pos := func() diag.Pos { return at(firstContentLine(doc)) }
		u := &unstructured.Unstructured{Object: obj}
		if kind, ok := obj["kind"].(string); !ok || kind == "" {
			errs.Add(pos(), "%s is not a Kubernetes object: it has no kind", where)
			continue
		}
		if av, ok := obj["apiVersion"].(string); !ok || av == "" {
			errs.Add(pos(), "%s is not a Kubernetes object: %s has no apiVersion", where, u.GetKind())
			continue
		}
		if md, ok := obj["metadata"]; ok {
			if _, isMap := md.(map[string]any); !isMap {
				errs.Add(pos(), "%s: metadata of %s must be a mapping", where, u.GetKind())
				continue
			}
		}
		if u.GetName() == "" {
			errs.Add(pos(), "%s: %s %s has no metadata.name", where, u.GetAPIVersion(), u.GetKind())
			continue
		}
		if problem := nameProblem(u.GroupVersionKind().GroupKind(), u.GetName()); problem != "" {
			errs.Add(pos(), "%s: %s name %q %s", where, u.GetKind(), u.GetName(), problem)
			continue
		}
		if ns := u.GetNamespace(); ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
			errs.Add(pos(), "%s: %s %s has namespace %q, which is not a valid DNS label", where, u.GetKind(), u.GetName(), ns)
			continue
		}
		if u.GetNamespace() == "" && !ClusterScoped(u.GroupVersionKind().GroupKind()) {
			u.SetNamespace(namespace)
		}
		o := &Object{
			APIVersion: u.GetAPIVersion(),
			Kind:       u.GetKind(),
			Name:       u.GetName(),
			Namespace:  u.GetNamespace(),
			Source:     fmt.Sprintf("%s#%d", file, i),
		}
		if identity {
			// The names are slices of the document's text: copies let the
			// text go, where the plan keeps nothing else of it.
			o.APIVersion, o.Kind = strings.Clone(o.APIVersion), strings.Clone(o.Kind)
			o.Name, o.Namespace = strings.Clone(o.Name), strings.Clone(o.Namespace)
		} else {
			o.Object = u
		}
		out = append(out, o)
	}
	return out, errs
}

// nameProblem says what is wrong with an object's name, as the API server
// would: every name is a path segment; the kinds below, the ones manifests
// hold most, have the stricter rules of their own. "" when it is fine.
func nameProblem(gk schema.GroupKind, name string) string {
	var msgs []string
	switch gk {
	case schema.GroupKind{Kind: "Service"}:
		msgs = validation.IsDNS1035Label(name)
	case schema.GroupKind{Kind: "Namespace"}:
		msgs = validation.IsDNS1123Label(name)
	case schema.GroupKind{Kind: "ConfigMap"}, schema.GroupKind{Kind: "Secret"}, schema.GroupKind{Kind: "ServiceAccount"},
		schema.GroupKind{Kind: "PersistentVolumeClaim"}, schema.GroupKind{Kind: "Pod"},
		schema.GroupKind{Group: "apps", Kind: "Deployment"}, schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
		schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, schema.GroupKind{Group: "batch", Kind: "Job"},
		schema.GroupKind{Group: "batch", Kind: "CronJob"}, schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}:
		msgs = validation.IsDNS1123Subdomain(name)
	default:
		switch {
		case name == "." || name == "..":
			msgs = []string{"may not be '.' or '..'"}
		case strings.ContainsAny(name, "/%"):
			msgs = []string{"may not contain '/' or '%'"}
		}
	}
	// A Job's name becomes a label value of its pods (63 characters); a
	// CronJob adds 11 characters to name its Jobs.
	switch limit := map[schema.GroupKind]int{{Group: "batch", Kind: "Job"}: 63, {Group: "batch", Kind: "CronJob"}: 52}[gk]; {
	case limit > 0 && len(name) > limit:
		msgs = append(msgs, fmt.Sprintf("must be no more than %d characters", limit))
	}
	if len(msgs) == 0 {
		return ""
	}
	return "is not valid: " + strings.Join(msgs, "; ")
}

// yamlLineError matches go-yaml's "yaml: line N: message".
var yamlLineError = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): ([^\n]+)`)

// yamlProblem words the YAML error of document n, which starts at line
// start of data: go-yaml counts lines within the document, a reader of the
// rendered output counts them from its top, and wants to see the line. It
// returns the message and that line of the rendered output (0 when the
// error names none).
func yamlProblem(err error, data []byte, n, start int) (string, int) {
	m := yamlLineError.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Sprintf("rendered document %d (line %d of the rendered output) is not valid YAML: %v", n, start, err), 0
	}
	rel, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return fmt.Sprintf("rendered document %d (line %d of the rendered output) is not valid YAML: %v", n, start, err), 0
	}
	line := start + rel - 1
	quoted := ""
	lines := bytes.Split(data, []byte("\n"))
	if line >= 1 && line <= len(lines) && len(bytes.TrimSpace(lines[line-1])) > 0 {
		l := string(bytes.TrimRight(lines[line-1], " \r"))
		if len(l) > 120 {
			l = l[:120] + "..."
		}
		quoted = fmt.Sprintf(" (%q)", l)
	}
	return fmt.Sprintf("rendered document %d is not valid YAML at line %d of the rendered output%s: %s", n, line, quoted, m[2]), line
}

// firstContentLine is the line of the rendered output where a document's
// first line that is neither blank nor a comment is.
func firstContentLine(doc document) int {
	line := doc.line
	for rest := doc.data; len(rest) > 0; line++ {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return line
		}
	}
	return doc.line
}

type document struct {
	data []byte
	line int
}

// splitDocuments splits a YAML stream at "---" lines.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for lineStart := 0; lineStart <= len(data); line++ {
		end := bytes.IndexByte(data[lineStart:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += lineStart
		}
		// Only lines starting with "---" can separate documents.
		if end-lineStart >= 3 && data[lineStart] == '-' {
			text := bytes.TrimRight(data[lineStart:end], " \t\r")
			if bytes.Equal(text, []byte("---")) || bytes.HasPrefix(text, []byte("--- ")) {
				docs = append(docs, document{data: data[start:lineStart], line: startLine})
				start, startLine = min(end+1, len(data)), line+1
			}
		}
		lineStart = end + 1
	}
	docs = append(docs, document{data: data[start:], line: startLine})
	return docs
}

// hasContent reports whether a document has a line that is neither blank
// nor a comment.
func hasContent(doc []byte) bool {
	for len(doc) > 0 {
		line := doc
		if i := bytes.IndexByte(doc, '\n'); i >= 0 {
			line, doc = doc[:i], doc[i+1:]
		} else {
			doc = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

// checkObjects enforces that no two nodes render the same object and, in slot
// environments, that nodes stay inside their namespace unless declared
// cluster-scoped.
func checkObjects(s *stack.Stack, p *Plan, slots bool) diag.List {
	var errs diag.List
	type owner struct {
		step, source string
		st           *Step
	}
	seen := map[string]owner{}
	for _, sec := range p.Secrets {
		seen[objectKey("", "Secret", p.Namespace, sec.Name)] = owner{step: "spec.secrets", source: s.File}
	}
	for _, st := range p.Steps {
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
				if prev.step == "node "+st.Name {
					continue // two nodes of one name: the loader reports the name
				}
				// Positioned at the node's manifests in services.yaml: that is
				// where the conflict is resolved (the rendered output has no
				// template line to point at).
				errs.AddHint(nodePos(s, st.Name, "manifests"), "each object must belong to exactly one node",
					"%s %s (%s) is rendered by node %s and also by %s (%s)", o.Kind, qualified(o), o.Source, st.Name, prev.step, prev.source)
				continue
			}
			seen[key] = owner{step: "node " + st.Name, source: o.Source, st: st}
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

// order computes levels and sorts the steps into apply order: by level, then
// group order, then declared order.
func order(s *stack.Stack, p *Plan) diag.List {
	var errs diag.List
	byName := map[string]*Step{}
	declared := map[string]int{}
	for i, st := range p.Steps {
		byName[st.Name] = st
		declared[st.Name] = i
	}
	groupIdx := func(g string) int { return s.GroupIndex(g) }

	// Drop edges to nodes absent from this environment, but refuse to drop
	// an edge silently: a dependency left out is an error.
	skipped := map[string]string{}
	for _, sk := range p.Skipped {
		skipped[sk.Name] = sk.Reason
	}
	for _, st := range p.Steps {
		for _, d := range st.DependsOn {
			if reason, ok := skipped[d]; ok {
				errs.AddHint(nodePos(s, st.Name, "dependsOn"),
					"enable the dependency in this environment or disable the dependent too",
					"node %s depends on %s, which is left out of environment %s (%s)", st.Name, d, p.Environment, reason)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}

	// Group barriers: every node of a group comes after every node of the
	// non-empty groups before it.
	groups := map[int][]*Step{}
	for _, st := range p.Steps {
		groups[groupIdx(st.Group)] = append(groups[groupIdx(st.Group)], st)
	}
	gidx := slices.Sorted(maps.Keys(groups))
	base := 0
	for stage, g := range gidx {
		members := groups[g]
		// Within a group, levels follow the dependencies (the loader has
		// rejected cycles and forward-group edges).
		level := map[string]int{}
		var visit func(st *Step, depth int) int
		visit = func(st *Step, depth int) int {
			if l, ok := level[st.Name]; ok {
				return l
			}
			if depth > len(members) {
				return base // a cycle; reported by the loader
			}
			l := base
			for _, d := range st.DependsOn {
				dep := byName[d]
				if dep == nil || groupIdx(dep.Group) != g {
					continue
				}
				l = max(l, visit(dep, depth+1)+1)
			}
			level[st.Name] = l
			return l
		}
		top := base
		for _, st := range members {
			st.Level = visit(st, 0)
			top = max(top, st.Level)
			st.After = slices.Compact(slices.Sorted(slices.Values(st.DependsOn)))
			st.Stage = stage
		}
		base = top + 1
	}
	sort.SliceStable(p.Steps, func(i, j int) bool {
		a, b := p.Steps[i], p.Steps[j]
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		if ga, gb := groupIdx(a.Group), groupIdx(b.Group); ga != gb {
			return ga < gb
		}
		return declared[a.Name] < declared[b.Name]
	})
	return errs
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
