// Package plan turns a stack resolved for one environment (and slot) into an
// ordered, rendered deployment plan: a DAG of nodes whose edges are the
// declared dependencies plus the group barriers (a group starts after every
// node of the groups before it is ready).
//
// A plan is deterministic: the same input gives a byte-identical plan. It
// knows its levels (what may run in parallel) and prints itself as text and
// JSON. It holds no secret values: spec.secrets appear by name and key only.
package plan

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
)

// Plan is the ordered work for one environment.
type Plan struct {
	// Stack is the stack's metadata.name; Project its spec.project.
	Stack   string `json:"stack"`
	Project string `json:"project"`
	// Environment is the environment's own name (ai-slot, not its parent).
	Environment string `json:"environment"`
	Namespace   string `json:"namespace"`
	Slot        string `json:"slot"`
	// Runtime is the runtime profile name; HotReload its switch.
	Runtime   string `json:"runtime"`
	HotReload bool   `json:"hotReload"`
	// Order is the group order.
	Order []string `json:"order"`
	// Timeout is spec.deploy.timeout: the readiness timeout of a node that
	// sets none of its own (zero: the applier's default).
	Timeout time.Duration `json:"-"`
	// TTL is how long a slot namespace lives after its last reconcile
	// (environments.<name>.ttl): the applier keeps the namespace annotation
	// codex-k8s.dev/expires-at at most that far ahead. Zero: no expiry.
	TTL time.Duration `json:"-"`
	// Production is true for a production environment (stack.IsProduction).
	Production bool `json:"-"`
	// NamespaceLabels and NamespaceAnnotations go on the namespace.
	NamespaceLabels      map[string]string `json:"namespaceLabels,omitempty"`
	NamespaceAnnotations map[string]string `json:"namespaceAnnotations,omitempty"`
	// Secrets are the Secrets the engine owns, applied after the namespace
	// and before any node.
	Secrets []Secret `json:"secrets,omitempty"`
	// Nodes are the nodes in apply order. The JSON key stays "steps", so
	// that plans written before stay readable: the one place a node is
	// called a step.
	Nodes []*Node `json:"steps"`
	// Skipped are nodes left out of this environment (when false, overlay
	// disabled), with the reason.
	Skipped []Skipped `json:"skipped,omitempty"`

	// Context is the template context the plan was rendered with.
	Context render.Context `json:"-"`
}

// Node is one node of the DAG.
type Node struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	// DependsOn are the declared dependencies present in this environment.
	DependsOn []string `json:"dependsOn"`
	// After are the nodes this one waits for by name: its dependencies,
	// sorted. It also waits for every node of an earlier stage.
	After []string `json:"-"`
	// Stage is the rank of the node's group among the groups this plan
	// holds, in deploy order: a node starts after every node of a lower
	// stage is ready (the group barrier), without listing them in After.
	Stage int `json:"-"`
	// Level is the node's depth in the DAG; nodes of one level may run
	// concurrently.
	Level int `json:"level"`
	// Infrastructure is true for nodes declared under spec.infrastructure.
	Infrastructure bool `json:"infrastructure,omitempty"`
	// Readiness is the node's readiness configuration, if declared.
	Timeout       string      `json:"timeout,omitempty"`
	Conditions    []Condition `json:"conditions,omitempty"`
	ClusterScoped bool        `json:"clusterScoped,omitempty"`
	Objects       []*Object   `json:"objects"`
	// Manifests are the rendered files, in order.
	Manifests []*Manifest `json:"-"`
}

// Condition is a custom readiness condition.
type Condition struct {
	Kind   string `json:"kind,omitempty"`
	Type   string `json:"type"`
	Status string `json:"status"`
}

// Object is one Kubernetes object a node applies.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
	// Source is the manifest (root-relative path) and the document index in it.
	Source string `json:"source"`
	// Object is the rendered object, namespace defaulted.
	Object *unstructured.Unstructured `json:"-"`
}

// Manifest is one rendered manifest file.
type Manifest struct {
	// Path is the template path relative to the stack root.
	Path string
	Data []byte
}

// Secret is an engine-owned Secret, described without its values.
type Secret struct {
	Name string      `json:"name"`
	Type string      `json:"type"`
	Keys []SecretKey `json:"keys"`
}

// SecretKey names one key and where its value comes from.
type SecretKey struct {
	Key string `json:"key"`
	// FromConfig names the bootstrap variable; Generate its length.
	FromConfig string `json:"fromConfig,omitempty"`
	Generate   int    `json:"generate,omitempty"`
	Charset    string `json:"charset,omitempty"`
}

// Skipped is a node left out of an environment.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Levels returns the node names per level, in apply order.
func (p *Plan) Levels() [][]string {
	var out [][]string
	for _, s := range p.Nodes {
		for len(out) <= s.Level {
			out = append(out, nil)
		}
		out[s.Level] = append(out[s.Level], s.Name)
	}
	return out
}

// Node returns the named node, or nil.
func (p *Plan) Node(name string) *Node {
	for _, s := range p.Nodes {
		if s.Name == name {
			return s
		}
	}
	return nil
}
