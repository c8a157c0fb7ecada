// Package renderbench generates synthetic stacks for the render benchmark of
// issue 2, and, for each, an equivalent Helm chart: the same partials and the
// same manifest bodies, adapted only where the two template contexts differ
// (the first line of each manifest builds the same per-service dict $c from
// .Service/.Vars on one side and from .Values/.Release on the other).
//
// A stack of N services has 5 deploy groups (10% stateful infrastructure, 10%
// migrations, 50% internal, 15% edge, 15% frontend), dependencies inside and
// between groups drawn from a fixed seed, the environments dev, staging,
// ai-slot (from dev, with slots) and prod, one partials file of 23 define
// blocks, and per service 3 manifests: Deployment, Service, and a ConfigMap
// (stateful, migrations, internal) or an Ingress (edge, frontend).
//
// Generation is deterministic: the same N writes the same bytes.
package renderbench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Project is the project name of every generated stack and chart.
const Project = "bench"

// Groups are the deploy groups in order, with the share of services each gets.
var Groups = []struct {
	Name  string
	Share float64
	// Prefix starts the names of the group's services.
	Prefix string
	Kind   string
}{
	{"stateful", 0.10, "db", "other"},
	{"migrations", 0.10, "migrate", "go"},
	{"internal", 0.50, "api", "go"},
	{"edge", 0.15, "gw", "go"},
	{"frontend", 0.15, "web", "frontend"},
}

// Service is one generated node.
type Service struct {
	Name      string
	Group     string
	Kind      string
	Image     string
	DependsOn []string
	Vars      map[string]string
	// When is set on a few frontend nodes: they are left out of prod.
	When bool
	// ProdReplicas overrides the replicas var in prod ("" for none).
	ProdReplicas string
}

// Ingress reports whether the service is exposed (Ingress instead of ConfigMap).
func (s *Service) Ingress() bool { return s.Group == "edge" || s.Group == "frontend" }

// Model returns the n services of a synthetic stack, in declared order.
func Model(n int) []*Service {
	if n < len(Groups) {
		n = len(Groups)
	}
	// Group sizes: each share of n, at least one each; internal takes the rest.
	sizes := make([]int, len(Groups))
	used := 0
	for i, g := range Groups {
		sizes[i] = max(1, int(g.Share*float64(n)))
		used += sizes[i]
	}
	sizes[2] += n - used

	rng := rand.New(rand.NewPCG(2, uint64(n)))
	byGroup := make([][]*Service, len(Groups))
	var out []*Service
	idx := 0
	for gi, g := range Groups {
		for j := 0; j < sizes[gi]; j++ {
			s := &Service{
				Name:  fmt.Sprintf("%s-%04d", g.Prefix, idx),
				Group: g.Name,
				Kind:  g.Kind,
				Vars: map[string]string{
					"port":       fmt.Sprint(8080 + idx%10),
					"replicas":   fmt.Sprint(1 + idx%2),
					"cpu":        fmt.Sprintf("%dm", 50*(1+idx%4)),
					"memory":     fmt.Sprintf("%dMi", 64*(1+idx%4)),
					"healthPath": "/healthz",
					"path":       "/" + fmt.Sprintf("%s-%04d", g.Prefix, idx),
				},
			}
			s.Image = Project + "/" + s.Name
			s.DependsOn = dependencies(rng, gi, byGroup)
			if g.Name == "frontend" && j%7 == 3 {
				s.When = true // previews: nobody depends on a frontend node
			}
			if idx%10 == 5 {
				s.ProdReplicas = "3"
			}
			byGroup[gi] = append(byGroup[gi], s)
			out = append(out, s)
			idx++
		}
	}
	return out
}

// dependencies draws the dependencies of the next node of group gi: a
// realistic mix of nodes of earlier groups and earlier nodes of its own group
// (a recent one, so chains stay short and no cycle can form).
func dependencies(rng *rand.Rand, gi int, byGroup [][]*Service) []string {
	seen := map[string]bool{}
	var deps []string
	pick := func(list []*Service, window int) {
		if len(list) == 0 {
			return
		}
		lo := max(0, len(list)-window)
		s := list[lo+rng.IntN(len(list)-lo)]
		if !seen[s.Name] {
			seen[s.Name] = true
			deps = append(deps, s.Name)
		}
	}
	stateful, migrations, internal, edge := byGroup[0], byGroup[1], byGroup[2], byGroup[3]
	switch gi {
	case 0: // a replica or exporter on a primary
		if rng.IntN(10) < 3 {
			pick(stateful, 5)
		}
	case 1: // its database, sometimes after another migration
		pick(stateful, len(stateful))
		if rng.IntN(10) < 2 {
			pick(migrations, 5)
		}
	case 2: // one or two stores, maybe its migration, up to two peers
		for range 1 + rng.IntN(2) {
			pick(stateful, len(stateful))
		}
		if rng.IntN(2) == 0 {
			pick(migrations, len(migrations))
		}
		for range rng.IntN(3) {
			pick(internal, 20)
		}
	case 3: // one to three backends, maybe another gateway
		for range 1 + rng.IntN(3) {
			pick(internal, len(internal))
		}
		if rng.IntN(10) < 2 {
			pick(edge, 5)
		}
	case 4: // one or two gateways
		for range 1 + rng.IntN(2) {
			pick(edge, len(edge))
		}
	}
	return deps
}

// The environments, as both sides see them.
type environment struct {
	name, runtime, domain, logLevel string
	hotReload                       bool
}

var environments = []environment{
	{"dev", "non-prod", "dev.bench.local", "debug", true},
	{"staging", "non-prod", "staging.bench.example.com", "info", true},
	{"prod", "prod", "bench.example.com", "warn", false},
}

const workspacePath = "/workspace"

// stackHeader builds $c from the codex-bootstrap template context.
const stackHeader = `{{- $c := dict "project" .Project "env" .Env "namespace" .Namespace "name" .Service.Name "group" .Service.Group "image" .Service.Image "hot" .Service.HotReload "deps" .Service.DependsOn "vars" .Service.Vars "global" .Vars "versions" .Versions "workspace" .Runtime.Workspace.MountPath }}
`

// chartHeader builds the same $c from Helm's context; %[1]s is the service.
const chartHeader = `{{- $s := index .Values.services %[1]q }}
{{- $c := dict "project" .Values.project "env" .Values.env "namespace" .Release.Namespace "name" %[1]q "group" $s.group "image" $s.image "hot" (and .Values.runtime.hotReload (has $s.kind (list "go" "frontend"))) "deps" $s.dependsOn "vars" $s.vars "global" .Values.vars "versions" .Values.versions "workspace" .Values.runtime.workspace.mountPath }}
`

// manifests returns the file base names and bodies of a service's templates.
func manifests(s *Service) [][2]string {
	third := [2]string{"configmap", configMapBody}
	if s.Ingress() {
		third = [2]string{"ingress", ingressBody}
	}
	return [][2]string{{"deployment", deploymentBody}, {"service", serviceBody}, third}
}

// WriteStack writes a codex-bootstrap stack of n services into dir:
// services.yaml, partials/_helpers.tpl and deploy/NAME/*.yaml.tpl.
func WriteStack(dir string, n int) error {
	svcs := Model(n)
	w := &writer{root: dir}
	w.file("services.yaml", servicesYAML(svcs))
	w.file("partials/_helpers.tpl", partials)
	for _, s := range svcs {
		for _, m := range manifests(s) {
			w.file(filepath.Join("deploy", s.Name, m[0]+".yaml.tpl"), stackHeader+m[1])
		}
	}
	return w.err
}

func servicesYAML(svcs []*Service) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Synthetic stack of %d services for the render benchmark (bench/render).\n", len(svcs))
	p("apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata:\n  name: %s-%d\n", Project, len(svcs))
	p("spec:\n  project: %s\n", Project)
	p("  versions: {app: \"1.4.2\", postgres: \"16\", redis: \"7.2\"}\n")
	p("  vars:\n    registry: registry.local:5000\n    domain: bench.local\n    logLevel: info\n    tracing: otel-collector:4317\n    ingressClass: nginx\n")
	p("  templates:\n    partials: [partials/*.tpl]\n")
	p("  environments:\n")
	for _, e := range environments {
		p("    %s:\n      runtime: %s\n      namespaceTemplate: \"{{ .Project }}-%s\"\n", e.name, e.runtime, e.name)
		p("      vars: {domain: %s, logLevel: %s}\n", e.domain, e.logLevel)
		p("      labels: {codex-k8s.dev/env: %s}\n", e.name)
		if e.name == "prod" {
			p("      overlays:\n")
			for _, s := range svcs {
				if s.ProdReplicas != "" {
					p("        %s: {vars: {replicas: %q}}\n", s.Name, s.ProdReplicas)
				}
			}
		}
		if e.name == "dev" {
			p("    ai-slot:\n      from: dev\n      slots: true\n      namespaceTemplate: \"{{ .Project }}-dev-{{ .Slot }}\"\n")
		}
	}
	p("  runtime:\n    non-prod: {hotReload: true, workspace: {mountPath: %s, size: 10Gi, uid: 1000, gid: 1000, fsGroup: 1000}}\n    prod: {hotReload: false}\n", workspacePath)
	p("  deploy:\n    order: [stateful, migrations, internal, edge, frontend]\n    timeout: 5m\n")
	section := ""
	for _, s := range svcs {
		want := "services"
		if s.Group == "stateful" {
			want = "infrastructure"
		}
		if want != section {
			section = want
			p("  %s:\n", section)
		}
		p("    - name: %s\n", s.Name)
		if section == "services" {
			p("      group: %s\n", s.Group)
		}
		p("      kind: %s\n      image: %s\n", s.Kind, s.Image)
		if len(s.DependsOn) > 0 {
			p("      dependsOn: [%s]\n", strings.Join(s.DependsOn, ", "))
		}
		if s.When {
			p("      when: '{{ ne .Env \"prod\" }}'\n")
		}
		p("      manifests: [deploy/%s/*.yaml.tpl]\n", s.Name)
		p("      vars: %s\n", flowMap(s.Vars))
		if s.Group == "stateful" {
			p("      readiness: {timeout: 10m}\n")
		}
	}
	p("  secrets:\n    - name: %s-secrets\n      data:\n        API_KEY: {generate: {length: 32}}\n        SESSION_KEY: {generate: {length: 64, charset: hex}}\n", Project)
	return b.String()
}

// WriteChart writes the Helm chart equivalent to WriteStack(dir, n): Chart.yaml,
// values.yaml (what services.yaml carries), values-ENV.yaml (what its
// environments change), templates/_helpers.tpl and templates/NAME/*.yaml.
func WriteChart(dir string, n int) error {
	svcs := Model(n)
	w := &writer{root: dir}
	w.file("Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: %s\ndescription: Synthetic chart of %d services for the render benchmark (bench/render).\ntype: application\nversion: 0.1.0\nappVersion: \"1.4.2\"\n", Project, len(svcs)))
	w.file("values.yaml", valuesYAML(svcs))
	for _, e := range environments {
		w.file("values-"+e.name+".yaml", envValuesYAML(e, svcs))
	}
	w.file("templates/_helpers.tpl", partials)
	for _, s := range svcs {
		for _, m := range manifests(s) {
			body := fmt.Sprintf(chartHeader, s.Name) + m[1]
			if s.When {
				body = "{{- if ne .Values.env \"prod\" }}\n" + body + "{{- end }}\n"
			}
			w.file(filepath.Join("templates", s.Name, m[0]+".yaml"), body)
		}
	}
	return w.err
}

func valuesYAML(svcs []*Service) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# What services.yaml carries; values-ENV.yaml holds what an environment changes.\n")
	p("project: %s\nenv: dev\n", Project)
	p("versions: {app: \"1.4.2\", postgres: \"16\", redis: \"7.2\"}\n")
	p("vars:\n  registry: registry.local:5000\n  domain: bench.local\n  logLevel: info\n  tracing: otel-collector:4317\n  ingressClass: nginx\n")
	p("runtime: {hotReload: false, workspace: {mountPath: \"\"}}\n")
	p("services:\n")
	for _, s := range svcs {
		p("  %s:\n    group: %s\n    kind: %s\n    image: %s\n", s.Name, s.Group, s.Kind, s.Image)
		p("    dependsOn: [%s]\n", strings.Join(s.DependsOn, ", "))
		p("    vars: %s\n", flowMap(s.Vars))
	}
	return b.String()
}

func envValuesYAML(e environment, svcs []*Service) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("env: %s\nvars: {domain: %s, logLevel: %s}\n", e.name, e.domain, e.logLevel)
	if e.hotReload {
		p("runtime: {hotReload: true, workspace: {mountPath: %s}}\n", workspacePath)
	}
	if e.name == "prod" {
		p("services:\n")
		for _, s := range svcs {
			if s.ProdReplicas != "" {
				p("  %s: {vars: {replicas: %q}}\n", s.Name, s.ProdReplicas)
			}
		}
	}
	return b.String()
}

// flowMap writes a map of strings as a YAML flow mapping with quoted values
// and sorted keys.
func flowMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %q", k, m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// writer writes files under root and keeps the first error.
type writer struct {
	root string
	err  error
}

func (w *writer) file(rel, content string) {
	if w.err != nil {
		return
	}
	path := filepath.Join(w.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		w.err = err
		return
	}
	w.err = os.WriteFile(path, []byte(content), 0o644)
}
