#!/usr/bin/env bash
# Points this tools module at another Kubernetes release:
#
#   tools/kubernetes/update.sh v1.36.3
#
# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go,
# ...) with local directories that a module download does not have. Each one
# is replaced here by its published version (v1.X.Y -> v0.X.Y), generated
# from the '=> ./staging/src/' lines of the release's own go.mod, whose
# godebug line is copied too. Then `go mod tidy` records go.sum.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
version="${1:?usage: update.sh v1.X.Y}"
staging="v0.${version#v1.}"
export GOWORK=off
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
[[ -f "$gomod" ]] || { echo "update.sh: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
{
	echo "module github.com/codex-k8s/codex-bootstrap/tools/kubernetes"
	echo
	sed -n 's/^go \(.*\)/go \1/p' "$gomod"
	echo
	grep '^godebug' "$gomod" || true
	echo
	echo "require k8s.io/kubernetes $version"
	echo
	echo "// One replace per staging module of k8s.io/kubernetes $version, generated"
	echo "// by update.sh from the '=> ./staging/src/' lines of its go.mod."
	echo "replace ("
	sed -n "s#^\s*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 $staging#p" "$gomod"
	echo ")"
} >go.mod
go mod tidy
