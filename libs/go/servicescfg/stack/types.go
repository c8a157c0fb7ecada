// Package stack is the typed model of services.yaml (apiVersion
// codex-k8s.dev/v1alpha1, kind ServiceStack) with its loader and validator.
//
// A Stack is what the file says, with defaults applied. Load reads one
// strictly (apiVersion and kind first, then every unknown field and wrongly
// typed value, then Validate) and returns every problem at once as a
// diag.List of FILE:LINE:COL diagnostics, along with the stack whenever the
// YAML parsed. ResolveEnvironment applies an environment's from chain; Glob
// is the one resolver of the file's paths and globs; PosOf positions a value
// of the file for diagnostics found later (rendering, planning), which live
// in sibling packages.
//
// The JSON Schema at schema/services.schema.json is generated from these
// types: after changing them, run go generate (or go test -run
// TestSchemaUpToDate -update) in this directory.
package stack

import (
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// APIVersion is the only apiVersion this loader reads.
	APIVersion = "codex-k8s.dev/v1alpha1"
	// Kind is the only kind this loader reads.
	Kind = "ServiceStack"
	// DefaultFile is the file name looked up when no path is given.
	DefaultFile = "services.yaml"
)

// The deploy groups, in their default order.
const (
	GroupStateful   = "stateful"
	GroupMigrations = "migrations"
	GroupInternal   = "internal"
	GroupEdge       = "edge"
	GroupFrontend   = "frontend"
)

// DefaultOrder is the group order used when spec.deploy.order is omitted.
var DefaultOrder = []string{GroupStateful, GroupMigrations, GroupInternal, GroupEdge, GroupFrontend}

// The runtime profiles every stack has, whether declared or not.
const (
	RuntimeNonProd = "non-prod"
	RuntimeProd    = "prod"
)

// Stack is one services.yaml.
type Stack struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// Path is the absolute path of the file the stack was read from.
	Path string `yaml:"-" json:"-"`
	// Root is the directory holding Path; every path in the file is relative to it.
	Root string `yaml:"-" json:"-"`
	// File is Path as it should appear in messages (relative to the working
	// directory when possible).
	File string `yaml:"-" json:"-"`

	// doc is the parsed YAML document, kept to position diagnostics found
	// after decoding.
	doc *yaml.Node
	// globs caches Glob results for the life of the stack (see Glob).
	globs *sync.Map
	// files is the stack root, opened once (see Files); set by Load, or
	// on first use for a Stack built by hand.
	files atomic.Pointer[rootFiles]
}

// Metadata names the stack.
type Metadata struct {
	Name        string            `yaml:"name" json:"name"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Spec is the body of a stack.
type Spec struct {
	// Project is a DNS label naming the product; it prefixes namespaces.
	Project string `yaml:"project" json:"project"`
	// Versions are exposed to templates as .Versions.
	Versions map[string]string `yaml:"versions,omitempty" json:"versions,omitempty"`
	// Vars are exposed to templates as .Vars; environments may override them.
	Vars      map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	Templates Templates         `yaml:"templates,omitempty" json:"templates,omitempty"`
	// Environments by name. An environment with Slots set is instantiated once
	// per slot (one namespace per task).
	Environments map[string]*Environment `yaml:"environments" json:"environments"`
	// Runtime profiles by name; "non-prod" and "prod" always exist.
	Runtime        map[string]*Runtime `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	Deploy         Deploy              `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	Infrastructure []*Node             `yaml:"infrastructure,omitempty" json:"infrastructure,omitempty"`
	Services       []*Node             `yaml:"services,omitempty" json:"services,omitempty"`
	Secrets        []*Secret           `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	Bootstrap      *Bootstrap          `yaml:"bootstrap,omitempty" json:"bootstrap,omitempty"`
}

// Templates configures the renderer shared by every template consumer.
type Templates struct {
	// Partials are paths or globs, relative to the stack root, of files that
	// hold {{ define }} blocks. Each entry must match at least one file.
	Partials []string `yaml:"partials,omitempty" json:"partials,omitempty"`
}

// Environment is one deploy target (dev, staging, ai-slot, prod, ...).
type Environment struct {
	// From names an environment whose settings this one inherits; its own
	// settings override the parent's, maps merge key by key.
	From string `yaml:"from,omitempty" json:"from,omitempty"`
	// Runtime names a runtime profile (non-prod or prod by default).
	Runtime string `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	// NamespaceTemplate renders the namespace, e.g. "{{ .Project }}-dev-{{ .Slot }}".
	NamespaceTemplate string `yaml:"namespaceTemplate,omitempty" json:"namespaceTemplate,omitempty"`
	// Slots marks a per-task environment: every use names a slot.
	Slots *bool `yaml:"slots,omitempty" json:"slots,omitempty"`
	// Production marks a production environment whatever its runtime
	// profile: it never hot-reloads nor mounts a workspace. An environment
	// with the prod runtime, and the environment named prod, are production
	// without it.
	Production *bool `yaml:"production,omitempty" json:"production,omitempty"`
	// TTL is how long a slot lives after its last reconcile: each reconcile
	// sets the namespace annotation codex-k8s.dev/expires-at to now + TTL,
	// and reconcile --prune-expired deletes the slots past it. Slot
	// environments only; zero means a slot never expires.
	TTL Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	// Vars and Versions override the stack's.
	Vars     map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	Versions map[string]string `yaml:"versions,omitempty" json:"versions,omitempty"`
	// Labels and Annotations are set on the environment's namespace.
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	// Overlays change nodes in this environment only, keyed by node name.
	Overlays map[string]*Overlay `yaml:"overlays,omitempty" json:"overlays,omitempty"`
}

// Overlay changes one node in one environment.
type Overlay struct {
	// Enabled false drops the node from the environment (and its dependents
	// must not need it).
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Image replaces the node's image.
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
	// Manifests are added after the node's own.
	Manifests []string `yaml:"manifests,omitempty" json:"manifests,omitempty"`
	// Vars are merged over the node's vars.
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
}

// Runtime is a runtime profile: how services run in an environment.
type Runtime struct {
	// HotReload runs Go and frontend services from the shared workspace with
	// a file watcher instead of a built image.
	HotReload bool `yaml:"hotReload" json:"hotReload"`
	// Workspace is the shared volume with the sources, when declared.
	Workspace *Workspace `yaml:"workspace,omitempty" json:"workspace,omitempty"`
}

// Workspace declares the shared workspace volume and its permissions.
type Workspace struct {
	MountPath    string `yaml:"mountPath,omitempty" json:"mountPath,omitempty"`
	Size         string `yaml:"size,omitempty" json:"size,omitempty"`
	StorageClass string `yaml:"storageClass,omitempty" json:"storageClass,omitempty"`
	AccessMode   string `yaml:"accessMode,omitempty" json:"accessMode,omitempty"`
	ClaimName    string `yaml:"claimName,omitempty" json:"claimName,omitempty"`
	UID          *int64 `yaml:"uid,omitempty" json:"uid,omitempty"`
	GID          *int64 `yaml:"gid,omitempty" json:"gid,omitempty"`
	FSGroup      *int64 `yaml:"fsGroup,omitempty" json:"fsGroup,omitempty"`
	// Source fills an empty workspace from a git repository when the
	// environment is reconciled, before its services start.
	Source *WorkspaceSource `yaml:"source,omitempty" json:"source,omitempty"`
}

// WorkspaceSource is a git repository cloned into an empty workspace by an
// init container of the engine's helper pod.
type WorkspaceSource struct {
	// Git is the repository URL (https://, http:// or git://), without
	// credentials: those come from CredentialsSecret.
	Git string `yaml:"git" json:"git"`
	// Ref is a branch or tag (default: the repository's HEAD).
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
	// CredentialsSecret names a Secret of the environment's namespace with
	// the key token (and optionally username, default x-access-token),
	// mounted into the clone's container and handed to git by a
	// credential helper: never in arguments, environment or logs.
	CredentialsSecret string `yaml:"credentialsSecret,omitempty" json:"credentialsSecret,omitempty"`
	// Image runs git (default docker.io/alpine/git).
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
}

// Deploy configures ordering and waiting.
type Deploy struct {
	// Order lists the groups; a group starts after the previous one is ready.
	Order []string `yaml:"order,omitempty" json:"order,omitempty"`
	// Timeout is the default readiness timeout of a node.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Node is one unit of deployment: an infrastructure component or a service.
type Node struct {
	Name string `yaml:"name" json:"name"`
	// Group is a deploy group; infrastructure defaults to stateful, services
	// to internal (or, when spec.deploy.order has no internal, to its last
	// group).
	Group     string   `yaml:"group,omitempty" json:"group,omitempty"`
	DependsOn []string `yaml:"dependsOn,omitempty" json:"dependsOn,omitempty"`
	// When is a template rendering to "true" or "false"; false skips the node.
	When  string `yaml:"when,omitempty" json:"when,omitempty"`
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
	// Manifests are paths or globs of templates, relative to the stack root.
	Manifests []string          `yaml:"manifests" json:"manifests"`
	Vars      map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// Kind tells the runtime how the service is built: go, frontend or other.
	// Go and frontend services hot-reload in runtimes with hotReload.
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Readiness refines how the node is waited for.
	Readiness *Readiness `yaml:"readiness,omitempty" json:"readiness,omitempty"`
	// ClusterScoped allows the node to apply cluster-scoped objects and
	// objects in other namespaces, even in slot environments.
	ClusterScoped bool `yaml:"clusterScoped,omitempty" json:"clusterScoped,omitempty"`

	// Infrastructure is set for nodes declared under spec.infrastructure.
	Infrastructure bool `yaml:"-" json:"-"`
}

// Readiness tunes the wait for one node.
type Readiness struct {
	// Timeout overrides spec.deploy.timeout for this node.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Conditions are extra conditions that must hold, for custom resources.
	Conditions []Condition `yaml:"conditions,omitempty" json:"conditions,omitempty"`
}

// Condition is a status condition an object must report.
type Condition struct {
	// Kind limits the condition to objects of this kind; empty means all.
	Kind   string `yaml:"kind,omitempty" json:"kind,omitempty"`
	Type   string `yaml:"type" json:"type"`
	Status string `yaml:"status,omitempty" json:"status,omitempty"`
}

// Secret is a Kubernetes Secret the engine owns.
type Secret struct {
	Name string `yaml:"name" json:"name"`
	// Type is the Secret type, Opaque by default.
	Type string                  `yaml:"type,omitempty" json:"type,omitempty"`
	Data map[string]*SecretValue `yaml:"data" json:"data"`
}

// SecretValue says where one key's value comes from. Exactly one is set.
type SecretValue struct {
	// FromConfig names a bootstrap variable (resolved from config.env and the
	// process environment's CODEX_VAR_NAME).
	FromConfig string `yaml:"fromConfig,omitempty" json:"fromConfig,omitempty"`
	// Generate creates a random value once and keeps it in the cluster.
	Generate *Generate `yaml:"generate,omitempty" json:"generate,omitempty"`
}

// Generate describes a generated secret value.
type Generate struct {
	Length int `yaml:"length,omitempty" json:"length,omitempty"`
	// Charset is alphanumeric (default), hex or base64.
	Charset string `yaml:"charset,omitempty" json:"charset,omitempty"`
}

// Bootstrap declares how a clean server is prepared by `install`.
type Bootstrap struct {
	// ConfigFile is where operator-supplied values are kept, relative to the root.
	ConfigFile string      `yaml:"configFile,omitempty" json:"configFile,omitempty"`
	Variables  []*Variable `yaml:"variables,omitempty" json:"variables,omitempty"`
	// Target names the variables that hold the server to install on.
	Target *BootstrapTarget `yaml:"target,omitempty" json:"target,omitempty"`
	Steps  []*Step          `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Kubeconfig is where the cluster's kubeconfig is on the server once
	// the steps ran (default /etc/rancher/k3s/k3s.yaml): install reads it
	// to deploy through the SSH connection.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
}

// BootstrapTarget names the bootstrap variables that hold the SSH target;
// install's --host, --port, --user and -i override their values.
type BootstrapTarget struct {
	Host         string `yaml:"host,omitempty" json:"host,omitempty"`
	Port         string `yaml:"port,omitempty" json:"port,omitempty"`
	User         string `yaml:"user,omitempty" json:"user,omitempty"`
	IdentityFile string `yaml:"identityFile,omitempty" json:"identityFile,omitempty"`
}

// Variable is one operator-supplied value.
type Variable struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Required    bool   `yaml:"required,omitempty" json:"required,omitempty"`
	// Secret values are read without echo and never printed or templated.
	Secret  bool   `yaml:"secret,omitempty" json:"secret,omitempty"`
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Pattern is a regular expression the value must match.
	Pattern string `yaml:"pattern,omitempty" json:"pattern,omitempty"`
}

// Step is one bootstrap step run on the server.
type Step struct {
	Name string `yaml:"name" json:"name"`
	// Script is a template path, relative to the root, rendered then run remotely.
	Script  string   `yaml:"script" json:"script"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Env lists the variables passed to the script.
	Env []string `yaml:"env,omitempty" json:"env,omitempty"`
	// Files are uploaded before the script runs, to files/NAME in its
	// working directory (paths relative to the root; NAME is the base name).
	Files []string `yaml:"files,omitempty" json:"files,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "5m").
type Duration struct{ time.Duration }
