package render

// Context is the data every template sees, whatever consumes it: manifests,
// bootstrap step scripts, and prompt, config or hook templates rendered by a
// platform through this package. Field names are part of the contract.
type Context struct {
	Project string
	// Env is the environment's own name ("ai-slot", not its parent).
	Env       string
	Namespace string
	// Slot is empty outside slot environments.
	Slot     string
	Versions map[string]string
	Vars     map[string]string
	// Config holds the non-secret bootstrap variables, resolved from
	// config.env overlaid by the process environment. Secret values never
	// reach templates.
	Config  map[string]string
	Runtime Runtime
	// Service is set while rendering a node's manifests.
	Service *Service
}

// Runtime is the environment's runtime profile as templates see it.
type Runtime struct {
	// Profile is the profile name, e.g. "non-prod" or "prod".
	Profile   string
	HotReload bool
	Workspace Workspace
}

// Workspace is the shared workspace volume; zero when none is declared.
type Workspace struct {
	Enabled      bool
	MountPath    string
	Size         string
	StorageClass string
	AccessMode   string
	ClaimName    string
	UID          int64
	GID          int64
	FSGroup      int64
	// Source is the git repository that fills an empty workspace; zero
	// when none is declared.
	Source WorkspaceSource
}

// WorkspaceSource is spec.runtime.<name>.workspace.source.
type WorkspaceSource struct {
	Git               string
	Ref               string
	CredentialsSecret string
	Image             string
}

// Service is the node whose manifests are being rendered (infrastructure
// nodes included).
type Service struct {
	Name      string
	Group     string
	Image     string
	Kind      string
	DependsOn []string
	Vars      map[string]string
	// HotReload is true when this service runs with a file watcher: the
	// runtime has hot reload and the service kind is go or frontend.
	HotReload bool
}
