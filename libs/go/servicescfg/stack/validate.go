package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template/parse"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// Limits of a generated secret value.
const (
	MinSecretLength = 1
	MaxSecretLength = 4096
)

// Charsets of generated secret values; "" means CharsetAlphanumeric.
const (
	CharsetAlphanumeric = "alphanumeric"
	CharsetHex          = "hex"
	CharsetBase64       = "base64"
)

// Kinds of node (Node.Kind); "" means KindOther.
const (
	KindGo       = "go"
	KindFrontend = "frontend"
	KindOther    = "other"
)

var (
	envNameRE   = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

const (
	dnsLabelHint     = "lower case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
	dnsSubdomainHint = "DNS labels joined by '.', at most 253 characters"
	envNameHint      = "upper case letters, digits and '_', not starting with a digit"
)

// IsDNSLabel reports whether s is an RFC 1123 label (a namespace or node
// name), by the API server's own rule.
func IsDNSLabel(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }

// IsDNSSubdomain reports whether s is an RFC 1123 subdomain (a Secret
// name), by the API server's own rule.
func IsDNSSubdomain(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

// Validate checks every rule of services.yaml that decoding does not, and
// returns every problem found, sorted, each at the position of the offending
// value. Load calls it; call it again after changing a stack in Go. It reads
// the file system to resolve paths and globs.
func (s *Stack) Validate() diag.List { return s.validate(context.Background()) }

// validate is Validate, which returns nothing once ctx is done: the paths
// of a large stack are resolved first, and stop with ctx.
func (s *Stack) validate(ctx context.Context) diag.List {
	if s.prefetchGlobs(ctx); ctx.Err() != nil {
		return nil
	}
	v := &validator{s: s}
	v.header()
	v.spec()
	v.groups()
	v.nodes()
	v.dependencies()
	v.runtimes()
	v.environments()
	v.secrets()
	v.bootstrap()
	v.errs.Sort()
	return v.errs
}

type validator struct {
	s    *Stack
	errs diag.List
	// byName indexes nodes by name, the first declaration winning.
	byName map[string]*Node
	// names lists node names in declared order, once each.
	names []string
	// paths holds each node's path in the document.
	paths map[*Node][]any
}

// nodePath is Stack.nodePath from an index: a stack of thousands of nodes
// would otherwise be scanned once per node.
func (v *validator) nodePath(n *Node) []any {
	if v.paths == nil {
		v.paths = make(map[*Node][]any, len(v.s.Spec.Infrastructure)+len(v.s.Spec.Services))
		for i, m := range v.s.Spec.Infrastructure {
			v.paths[m] = []any{"spec", "infrastructure", i}
		}
		for i, m := range v.s.Spec.Services {
			if _, ok := v.paths[m]; !ok {
				v.paths[m] = []any{"spec", "services", i}
			}
		}
	}
	if p, ok := v.paths[n]; ok {
		return p
	}
	return []any{"spec"}
}

func (v *validator) pos(path ...any) diag.Pos    { return v.s.PosOf(path...) }
func (v *validator) keyPos(path ...any) diag.Pos { return v.s.KeyPosOf(path...) }

// missing reports a required field that is absent (or empty) at path; it is
// positioned at the value when present (e.g. an empty list), else at the
// parent that should hold it.
func (v *validator) missing(path []any, owner string) {
	field := path[len(path)-1].(string)
	_, n, found := v.s.locate(path)
	if found == len(path)-1 && n != nil && n.Kind != yaml.MappingNode {
		// The parent is of the wrong type, reported by the decoder.
		return
	}
	if found == len(path) && n != nil {
		switch {
		case n.Kind == yaml.ScalarNode && (n.Value == "" || n.ShortTag() == "!!null"):
			// Written but empty: as good as missing.
		case (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) && len(n.Content) == 0:
			v.errs.Add(v.pos(path...), "%s of %s must not be empty", field, cmp.Or(owner, "the document"))
			return
		default:
			// A value of the wrong type, reported by the decoder.
			return
		}
	}
	if owner == "" {
		v.errs.Add(v.pos(path...), "missing required field %q", field)
		return
	}
	v.errs.Add(v.pos(path...), "missing required field %q in %s", field, owner)
}

func (v *validator) header() {
	for _, f := range []struct{ key, got, want string }{
		{"apiVersion", v.s.APIVersion, APIVersion},
		{"kind", v.s.Kind, Kind},
	} {
		switch f.got {
		case f.want:
		case "":
			v.missing([]any{f.key}, "")
		default:
			v.errs.AddHint(v.pos(f.key), "this loader reads "+f.key+" "+quote(f.want), "unsupported %s %q", f.key, f.got)
		}
	}
	if v.s.Metadata.Name == "" {
		v.missing([]any{"metadata", "name"}, "metadata")
	} else if !IsDNSSubdomain(v.s.Metadata.Name) {
		v.errs.AddHint(v.pos("metadata", "name"), dnsSubdomainHint, "stack name %q is not a valid DNS subdomain", v.s.Metadata.Name)
	}
}

func (v *validator) spec() {
	switch p := v.s.Spec.Project; {
	case p == "":
		v.missing([]any{"spec", "project"}, "spec")
	case !IsDNSLabel(p):
		v.errs.AddHint(v.pos("spec", "project"), dnsLabelHint, "project %q is not a valid DNS label", p)
	}
	if d := v.s.Spec.Deploy.Timeout.Duration; d < 0 {
		v.errs.Add(v.pos("spec", "deploy", "timeout"), "spec.deploy.timeout must not be negative")
	}
	for i, p := range v.s.Spec.Templates.Partials {
		v.path("partial", p, []any{"spec", "templates", "partials", i}, pathGlob)
	}
}

func (v *validator) groups() {
	seen := map[string]int{}
	for i, g := range v.s.Spec.Deploy.Order {
		path := []any{"spec", "deploy", "order", i}
		if g == "" {
			v.errs.Add(v.pos(path...), "empty group name in spec.deploy.order")
			continue
		}
		if first, dup := seen[g]; dup {
			v.errs.Add(v.pos(path...), "duplicate group %q in spec.deploy.order (first declared at line %d)",
				g, v.pos("spec", "deploy", "order", first).Line)
			continue
		}
		seen[g] = i
	}
}

// label names a node in messages: `service "api"`, or its path when unnamed.
func (v *validator) label(n *Node) string {
	if n.Name == "" {
		return pathString(v.nodePath(n))
	}
	if n.Infrastructure {
		return "infrastructure node " + quote(n.Name)
	}
	return "service " + quote(n.Name)
}

func (v *validator) nodes() {
	v.byName = map[string]*Node{}
	for _, n := range v.s.Nodes() {
		p := v.nodePath(n)
		field := func(f ...any) []any { return append(slices.Clip(p), f...) }
		label := v.label(n)
		switch {
		case n.Name == "":
			v.missing(field("name"), pathString(p))
		case !IsDNSLabel(n.Name):
			v.errs.AddHint(v.pos(field("name")...), dnsLabelHint, "node name %q is not a valid DNS label", n.Name)
		}
		if first, dup := v.byName[n.Name]; dup && n.Name != "" {
			v.errs.Add(v.pos(field("name")...), "duplicate node name %q (first declared at line %d)",
				n.Name, v.s.NodePos(first, "name").Line)
		} else if n.Name != "" {
			v.byName[n.Name] = n
			v.names = append(v.names, n.Name)
		}

		if len(n.Manifests) == 0 {
			v.missing(field("manifests"), label)
		}
		for i, m := range n.Manifests {
			v.path("manifest", m, field("manifests", i), pathGlob)
		}
		v.group(n, label, field("group"))
		switch n.Kind {
		case "", KindGo, KindFrontend, KindOther:
		default:
			v.errs.AddHint(v.pos(field("kind")...), "use go, frontend or other", "%s has unknown kind %q", label, n.Kind)
		}
		v.template("when of "+label, n.When, field("when"))
		if r := n.Readiness; r != nil {
			if r.Timeout.Duration < 0 {
				v.errs.Add(v.pos(field("readiness", "timeout")...), "readiness timeout of %s must not be negative", label)
			}
			for i, c := range r.Conditions {
				if c.Type == "" {
					v.missing(field("readiness", "conditions", i, "type"), pathString(field("readiness", "conditions", i)))
				}
			}
		}
	}
}

func (v *validator) group(n *Node, label string, path []any) {
	if n.Group == "" || v.s.GroupIndex(n.Group) >= 0 {
		return
	}
	hint := didYouMean(n.Group, v.s.Order())
	if !v.s.has(path...) {
		v.errs.AddHint(v.pos(path...), "name a group with group:, or add it to spec.deploy.order",
			"%s has no group and the default group %q is not in spec.deploy.order", label, n.Group)
		return
	}
	v.errs.AddHint(v.pos(path...), hint, "%s has unknown group %q", label, n.Group)
}

func (v *validator) dependencies() {
	for _, n := range v.s.Nodes() {
		p := v.nodePath(n)
		label := v.label(n)
		seen := map[string]bool{}
		for i, dep := range n.DependsOn {
			// Positions are looked up only for problems: a valid stack of
			// thousands of edges should not walk the document for each.
			pos := func() diag.Pos { return v.pos(append(slices.Clip(p), "dependsOn", i)...) }
			if dep == "" {
				v.errs.Add(pos(), "empty entry in dependsOn of %s", label)
				continue
			}
			if seen[dep] {
				v.errs.Add(pos(), "%s lists %q twice in dependsOn", label, dep)
				continue
			}
			seen[dep] = true
			target := v.byName[dep]
			if target == nil {
				v.errs.AddHint(pos(), didYouMean(dep, v.names), "%s depends on unknown node %q", label, dep)
				continue
			}
			if gi, gt := v.s.GroupIndex(n.Group), v.s.GroupIndex(target.Group); gi >= 0 && gt > gi {
				v.errs.AddHint(pos(), "a node may depend only on nodes of its own or an earlier group",
					"%s in group %q depends on %q in the later group %q", label, n.Group, dep, target.Group)
			}
		}
	}
	v.cycles()
}

// cycles reports each strongly connected set of nodes once, as its shortest
// cycle through the smallest name, at the dependsOn entry that starts it.
func (v *validator) cycles() {
	edges := func(name string) []string {
		var out []string
		for _, d := range v.byName[name].DependsOn {
			if v.byName[d] != nil && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, scc := range components(v.names, edges) {
		start := slices.Min(scc)
		cycle := shortestCycle(start, scc, edges)
		if cycle == nil {
			continue
		}
		n := v.byName[start]
		idx := slices.Index(n.DependsOn, cycle[1])
		v.errs.Add(v.s.NodePos(n, "dependsOn", idx), "dependency cycle: %s", strings.Join(cycle, " -> "))
	}
}

// components returns the strongly connected components of a graph (Tarjan)
// that hold a cycle: two or more vertices, or one with an edge to itself.
func components(vertices []string, edges func(string) []string) [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	var visit func(string)
	visit = func(u string) {
		index[u] = len(index)
		low[u] = index[u]
		stack = append(stack, u)
		onStack[u] = true
		for _, w := range edges(u) {
			if _, seen := index[w]; !seen {
				visit(w)
				low[u] = min(low[u], low[w])
			} else if onStack[w] {
				low[u] = min(low[u], index[w])
			}
		}
		if low[u] != index[u] {
			return
		}
		var scc []string
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			scc = append(scc, w)
			if w == u {
				break
			}
		}
		if len(scc) > 1 || slices.Contains(edges(u), u) {
			out = append(out, scc)
		}
	}
	for _, u := range vertices {
		if _, seen := index[u]; !seen {
			visit(u)
		}
	}
	return out
}

// shortestCycle finds, breadth first and following edges in declared order,
// the shortest path from start back to start within the component.
func shortestCycle(start string, scc []string, edges func(string) []string) []string {
	prev := map[string]string{}
	queue := []string{start}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, w := range edges(u) {
			if !slices.Contains(scc, w) {
				continue
			}
			if w == start {
				path := []string{start}
				for x := u; x != start; x = prev[x] {
					path = append(path, x)
				}
				path = append(path, start)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, seen := prev[w]; !seen {
				prev[w] = u
				queue = append(queue, w)
			}
		}
	}
	return nil
}

func (v *validator) runtimes() {
	for _, name := range v.s.RuntimeNames() {
		rt := v.s.Spec.Runtime[name]
		p := []any{"spec", "runtime", name}
		if rt == nil {
			continue
		}
		if name == RuntimeProd && rt.HotReload {
			v.errs.AddHint(v.pos(append(p, "hotReload")...), "runtime parity: hot reload in every non-prod environment, never in prod",
				"runtime profile %q must not enable hotReload", name)
		}
		w := rt.Workspace
		if w == nil {
			continue
		}
		if name == RuntimeProd {
			v.errs.AddHint(v.pos(append(slices.Clip(p), "workspace")...), parityHint,
				"runtime profile %q must not declare a workspace", name)
		}
		wp := append(slices.Clip(p), "workspace")
		field := func(f string) []any { return append(slices.Clip(wp), f) }
		if w.MountPath != "" && !strings.HasPrefix(w.MountPath, "/") {
			v.errs.Add(v.pos(field("mountPath")...), "workspace mountPath %q of runtime profile %q must be an absolute path", w.MountPath, name)
		}
		if w.Size != "" {
			if q, err := resource.ParseQuantity(w.Size); err != nil || q.Sign() <= 0 {
				v.errs.AddHint(v.pos(field("size")...), "write a Kubernetes quantity such as 10Gi or 500Mi",
					"workspace size %q of runtime profile %q is not a positive storage size", w.Size, name)
			}
		}
		switch w.AccessMode {
		case "", "ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod":
		default:
			v.errs.AddHint(v.pos(field("accessMode")...), "use ReadWriteOnce, ReadWriteMany, ReadOnlyMany or ReadWriteOncePod",
				"workspace accessMode %q of runtime profile %q is not a volume access mode", w.AccessMode, name)
		}
		for _, id := range []struct {
			key string
			v   *int64
		}{{"uid", w.UID}, {"gid", w.GID}, {"fsGroup", w.FSGroup}} {
			if id.v != nil && *id.v < 0 {
				v.errs.Add(v.pos(field(id.key)...), "workspace %s of runtime profile %q must not be negative", id.key, name)
			}
		}
		v.workspaceSource(name, w.Source, field("source"))
	}
}

// workspaceSource checks a workspace's git source: a URL git can fetch,
// with no credentials in it, and a Secret name.
func (v *validator) workspaceSource(profile string, src *WorkspaceSource, p []any) {
	if src == nil {
		return
	}
	field := func(f string) []any { return append(slices.Clip(p), f) }
	u, err := url.Parse(src.Git)
	switch {
	case src.Git == "":
		v.errs.Add(v.pos(p...), "workspace source of runtime profile %q needs git (the repository URL)", profile)
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "git"):
		v.errs.AddHint(v.pos(field("git")...), "write an https://, http:// or git:// URL",
			"workspace source git %q of runtime profile %q is not a repository URL", src.Git, profile)
	case u.User != nil:
		v.errs.AddHint(v.pos(field("git")...), "put the token in a Secret and name it in credentialsSecret",
			"workspace source git URL of runtime profile %q must not hold credentials", profile)
	}
	if src.CredentialsSecret != "" && len(validation.IsDNS1123Subdomain(src.CredentialsSecret)) > 0 {
		v.errs.Add(v.pos(field("credentialsSecret")...), "workspace source credentialsSecret %q of runtime profile %q is not a Secret name", src.CredentialsSecret, profile)
	}
	if strings.HasPrefix(src.Ref, "-") || strings.ContainsAny(src.Ref, " \t\n~^:?*[\\") {
		v.errs.Add(v.pos(field("ref")...), "workspace source ref %q of runtime profile %q is not a branch or tag name", src.Ref, profile)
	}
}

func (v *validator) environments() {
	envs := v.s.Spec.Environments
	if len(envs) == 0 {
		if v.s.has("spec", "environments") {
			v.errs.Add(v.pos("spec", "environments"), "spec.environments must declare at least one environment")
		} else {
			v.missing([]any{"spec", "environments"}, "spec")
		}
		return
	}
	names := v.s.EnvironmentNames()
	summary, cycles := v.s.summarize()
	for _, c := range cycles {
		v.errs.Add(v.pos("spec", "environments", c[0], "from"), "environment cycle: %s", strings.Join(c, " -> "))
	}
	for _, name := range names {
		e := envs[name]
		if e == nil {
			e = &Environment{}
		}
		p := []any{"spec", "environments", name}
		field := func(f ...any) []any { return append(slices.Clip(p), f...) }
		label := "environment " + quote(name)
		if !IsDNSLabel(name) {
			v.errs.AddHint(v.keyPos(p...), dnsLabelHint, "environment name %q is not a valid DNS label", name)
		}
		if e.From != "" && envs[e.From] == nil {
			others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name })
			v.errs.AddHint(v.pos(field("from")...), didYouMean(e.From, others), "%s inherits from unknown environment %q", label, e.From)
		}
		if e.Runtime != "" && v.s.Spec.Runtime[e.Runtime] == nil {
			v.errs.AddHint(v.pos(field("runtime")...), didYouMean(e.Runtime, v.s.RuntimeNames()), "%s uses unknown runtime profile %q", label, e.Runtime)
		}
		v.template("namespaceTemplate of "+label, e.NamespaceTemplate, field("namespaceTemplate"))
		for _, node := range slices.Sorted(maps.Keys(e.Overlays)) {
			if v.byName[node] == nil {
				v.errs.AddHint(v.keyPos(field("overlays", node)...), didYouMean(node, v.names), "%s overlays unknown node %q", label, node)
			}
			if ov := e.Overlays[node]; ov != nil {
				for i, m := range ov.Manifests {
					v.path("manifest", m, field("overlays", node, "manifests", i), pathGlob)
				}
			}
		}

		eff := summary[name]
		if eff.broken {
			continue // a cycle or an unknown from, reported above
		}
		if eff.namespaceTemplate == "" {
			v.errs.AddHint(v.keyPos(p...), "set namespaceTemplate or inherit one with from", "%s has no namespaceTemplate", label)
		}
		if eff.runtime == "" {
			v.errs.AddHint(v.keyPos(p...), "set runtime (e.g. non-prod or prod) or inherit one with from", "%s has no runtime", label)
			continue
		}
		v.parity(name, eff)
		v.ttl(name, e, eff)
	}
}

// template checks that text parses as a Go template (syntax only: functions
// are the renderer's business).
func (v *validator) template(what, text string, path []any) {
	if text == "" {
		return
	}
	t := parse.New(what)
	t.Mode = parse.SkipFuncCheck | parse.ParseComments
	if _, err := t.Parse(text, "", "", map[string]*parse.Tree{}); err != nil {
		_, node, _ := v.s.locate(path)
		pos, msg := templateErrorPos(v.s.nodePos(node), node, what, err)
		v.errs.Add(pos, "%s is not a valid template: %s", what, msg)
	}
}

var templateErrRE = regexp.MustCompile(`^template: .*?:(\d+):(?:\d+:)? ?(.*)$`)

// templateErrorPos moves pos to the line of a multi-line template that
// holds the error, and strips text/template's own prefix from the message.
func templateErrorPos(pos diag.Pos, node *yaml.Node, name string, err error) (diag.Pos, string) {
	msg := err.Error()
	m := templateErrRE.FindStringSubmatch(strings.Replace(msg, name, "t", 1))
	if m == nil {
		return pos, msg
	}
	line, _ := strconv.Atoi(m[1])
	if line > 1 && node != nil && pos.Line > 0 {
		if node.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			pos.Line += line
		} else {
			pos.Line += line - 1
		}
		pos.Col = 0
	} else if line == 1 && node != nil && node.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		pos.Line++
		pos.Col = 0
	}
	return pos, m[2]
}

// Kinds of path checked by path.
const (
	pathGlob   = iota // a path or glob that must match at least one file
	pathFile          // a plain path to an existing file
	pathTarget        // a plain path that need not exist yet
)

// path checks a path or glob as written at path: inside the root, a valid
// pattern, and matching what kind asks for.
// prefetchGlobs resolves the stack's manifest patterns on every core before
// validation reads them one by one: a large stack has a folder per node,
// and Glob caches what it finds.
func (s *Stack) prefetchGlobs(ctx context.Context) {
	if s.globs == nil {
		return
	}
	var patterns []string
	for _, n := range s.Nodes() {
		if n != nil {
			patterns = append(patterns, n.Manifests...)
		}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for p := range work {
				_, _ = s.globContext(ctx, p)
			}
		})
	}
	done := ctx.Done()
feed:
	for _, p := range patterns {
		select {
		case work <- p:
		case <-done:
			break feed
		}
	}
	close(work)
	wg.Wait()
}

func (v *validator) path(what, p string, at []any, kind int) {
	pos := func() diag.Pos { return v.pos(at...) } // looked up only for problems
	noun := what
	if hasMeta(p) {
		noun += " pattern"
	}
	if p == "" {
		v.errs.Add(pos(), "empty %s path", what)
		return
	}
	if kind != pathGlob && hasMeta(p) {
		v.errs.AddHint(pos(), "name one file, without *, ?, [ or \\", "%s %q must be a path, not a pattern", what, p)
		return
	}
	files, err := v.s.Glob(p)
	var pe *PatternError
	switch {
	case errors.As(err, &pe):
		v.errs.Add(pos(), "%s %q %s", noun, p, pe.Problem)
		return
	case err != nil:
		v.errs.Add(pos(), "%s %q: %v", noun, p, err)
		return
	case len(files) > 0 || kind == pathTarget:
		return
	case hasMeta(p):
		v.errs.Add(pos(), "%s %q matches no file", noun, p)
		return
	}
	if fi, err := os.Stat(v.s.Abs(p)); err == nil && fi.IsDir() {
		hint := ""
		if kind == pathGlob {
			hint = "use a glob such as " + quote(strings.TrimSuffix(p, "/")+"/*.yaml")
		}
		v.errs.AddHint(pos(), hint, "%s %q is a directory, not a file", noun, p)
		return
	}
	v.errs.Add(pos(), "%s %q does not exist", noun, p)
}

func (v *validator) secrets() {
	seen := map[string]int{}
	for i, sec := range v.s.Spec.Secrets {
		p := []any{"spec", "secrets", i}
		field := func(f ...any) []any { return append(slices.Clip(p), f...) }
		label := pathString(p)
		switch {
		case sec.Name == "":
			v.missing(field("name"), label)
		case !IsDNSSubdomain(sec.Name):
			v.errs.AddHint(v.pos(field("name")...), dnsSubdomainHint, "secret name %q is not a valid DNS subdomain", sec.Name)
		}
		if sec.Name != "" {
			label = "secret " + quote(sec.Name)
			if first, dup := seen[sec.Name]; dup {
				v.errs.Add(v.pos(field("name")...), "duplicate secret name %q (first declared at line %d)",
					sec.Name, v.pos("spec", "secrets", first, "name").Line)
			} else {
				seen[sec.Name] = i
			}
		}
		if len(sec.Data) == 0 {
			v.missing(field("data"), label)
		}
		for _, key := range slices.Sorted(maps.Keys(sec.Data)) {
			v.secretValue(label, key, sec.Data[key], field("data", key))
		}
	}
}

func (v *validator) secretValue(secret, key string, val *SecretValue, p []any) {
	field := func(f ...any) []any { return append(slices.Clip(p), f...) }
	if !secretKeyRE.MatchString(key) {
		v.errs.AddHint(v.keyPos(p...), "letters, digits, '-', '_' and '.'", "%s key %q is not a valid Secret key", secret, key)
	}
	if val == nil {
		val = &SecretValue{}
	}
	switch {
	case val.FromConfig != "" && val.Generate != nil:
		v.errs.AddHint(v.pos(p...), "set exactly one of them", "%s key %q sets both fromConfig and generate", secret, key)
	case val.FromConfig == "" && val.Generate == nil:
		v.errs.AddHint(v.pos(p...), "set exactly one of them", "%s key %q sets neither fromConfig nor generate", secret, key)
	}
	if val.FromConfig != "" && v.s.Variable(val.FromConfig) == nil {
		hint := didYouMean(val.FromConfig, v.variableNames())
		if !strings.HasPrefix(hint, "did you mean") {
			hint = "declare it in spec.bootstrap.variables"
		}
		v.errs.AddHint(v.pos(field("fromConfig")...), hint, "%s key %q reads undeclared bootstrap variable %q", secret, key, val.FromConfig)
	}
	if g := val.Generate; g != nil {
		if g.Length < MinSecretLength || g.Length > MaxSecretLength {
			v.errs.Add(v.pos(field("generate", "length")...), "%s key %q: generate length %d is out of range %d..%d",
				secret, key, g.Length, MinSecretLength, MaxSecretLength)
		}
		switch g.Charset {
		case "", CharsetAlphanumeric, CharsetHex, CharsetBase64:
		default:
			v.errs.AddHint(v.pos(field("generate", "charset")...), "use alphanumeric, hex or base64",
				"%s key %q: unknown charset %q", secret, key, g.Charset)
		}
	}
}

func (v *validator) variableNames() []string {
	var out []string
	if b := v.s.Spec.Bootstrap; b != nil {
		for _, x := range b.Variables {
			out = append(out, x.Name)
		}
	}
	return out
}

func (v *validator) bootstrap() {
	b := v.s.Spec.Bootstrap
	if b == nil {
		return
	}
	if b.ConfigFile != "" {
		v.path("config file", b.ConfigFile, []any{"spec", "bootstrap", "configFile"}, pathTarget)
	}
	seen := map[string]int{}
	for i, x := range b.Variables {
		p := []any{"spec", "bootstrap", "variables", i}
		field := func(f ...any) []any { return append(slices.Clip(p), f...) }
		switch {
		case x.Name == "":
			v.missing(field("name"), pathString(p))
		case !envNameRE.MatchString(x.Name):
			v.errs.AddHint(v.pos(field("name")...), envNameHint, "bootstrap variable name %q is not an environment variable name", x.Name)
		}
		if first, dup := seen[x.Name]; dup && x.Name != "" {
			v.errs.Add(v.pos(field("name")...), "duplicate bootstrap variable %q (first declared at line %d)",
				x.Name, v.pos("spec", "bootstrap", "variables", first, "name").Line)
		} else {
			seen[x.Name] = i
		}
		if x.Pattern == "" {
			continue
		}
		re, err := x.Matcher()
		if err != nil {
			v.errs.Add(v.pos(field("pattern")...), "invalid pattern %q of bootstrap variable %q: %s", x.Pattern, x.Name,
				strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			continue
		}
		if x.Default != "" && !re.MatchString(x.Default) {
			what := quote(x.Default)
			if x.Secret {
				what = "(secret)"
			}
			v.errs.Add(v.pos(field("default")...), "default %s of bootstrap variable %q does not match its pattern %q", what, x.Name, x.Pattern)
		}
	}
	steps := map[string]int{}
	for i, st := range b.Steps {
		p := []any{"spec", "bootstrap", "steps", i}
		field := func(f ...any) []any { return append(slices.Clip(p), f...) }
		label := pathString(p)
		if st.Name == "" {
			v.missing(field("name"), label)
		} else {
			label = "bootstrap step " + quote(st.Name)
			if first, dup := steps[st.Name]; dup {
				v.errs.Add(v.pos(field("name")...), "duplicate bootstrap step %q (first declared at line %d)",
					st.Name, v.pos("spec", "bootstrap", "steps", first, "name").Line)
			} else {
				steps[st.Name] = i
			}
		}
		if st.Script == "" {
			v.missing(field("script"), label)
		} else {
			v.path("step script", st.Script, field("script"), pathFile)
		}
		if st.Timeout.Duration < 0 {
			v.errs.Add(v.pos(field("timeout")...), "timeout of %s must not be negative", label)
		}
		for j, e := range st.Env {
			if !envNameRE.MatchString(e) {
				v.errs.AddHint(v.pos(field("env", j)...), envNameHint, "env entry %q of %s is not an environment variable name", e, label)
			}
		}
		names := map[string]bool{}
		for j, f := range st.Files {
			v.path("step file", f, field("files", j), pathFile)
			if base := path.Base(f); names[base] {
				v.errs.Add(v.pos(field("files", j)...), "%s uploads two files named %q", label, base)
			} else {
				names[base] = true
			}
		}
	}
	v.bootstrapTarget(b)
}

// bootstrapTarget checks that spec.bootstrap.target names declared variables.
func (v *validator) bootstrapTarget(b *Bootstrap) {
	if b.Target == nil {
		return
	}
	declared := map[string]bool{}
	for _, x := range b.Variables {
		declared[x.Name] = true
	}
	for _, f := range []struct{ key, name string }{
		{"host", b.Target.Host}, {"port", b.Target.Port}, {"user", b.Target.User}, {"identityFile", b.Target.IdentityFile},
	} {
		if f.name != "" && !declared[f.name] {
			v.errs.AddHint(v.pos("spec", "bootstrap", "target", f.key), "declare it under spec.bootstrap.variables",
				"bootstrap target %s names %q, which is not a bootstrap variable", f.key, f.name)
		}
	}
}

// cycleError is a from chain that comes back on itself.
type cycleError struct{ cycle []string }

func (e *cycleError) Error() string {
	return fmt.Sprintf("environment cycle: %s", strings.Join(e.cycle, " -> "))
}
