//go:build tools

// Package tools pins the helm CLI that bench/render/run.sh builds from source
// to time `helm template` against codex-bootstrap on the same templates. It is
// a module of its own so helm's dependency graph never reaches the root module.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
