#!/usr/bin/env bash
# Builds the helm CLI pinned in this module (see tools.go) into a cache
# directory outside git and prints the binary's path. Nothing built here is
# committed. bench/render/run.sh calls this; it can also be run on its own.
#
#   tools/helm/build.sh
#
# Environment:
#   CODEX_CACHE_DIR   cache root (default: $HOME/.cache/codex-bootstrap)
#   BENCH_BIN_DIR     where the binary goes (default: $CODEX_CACHE_DIR/bench/bin)
#
# The binary is rebuilt only when its stamp (a hash of go.mod, go.sum, the
# build flags and the Go version) differs from the one recorded next to it, so
# a second run is a no-op. The build goes to a temporary file that is moved
# into place only when complete: a failed build never leaves a half-written
# binary that would later be taken as present.
set -euo pipefail

MODULE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN_DIR="${BENCH_BIN_DIR:-${CODEX_CACHE_DIR:-$HOME/.cache/codex-bootstrap}/bench/bin}"
# The tools module is built on its own, never as part of a workspace.
export GOWORK=off
export CGO_ENABLED=0

cd "$MODULE_DIR"
version="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
# Same variables as helm's Makefile, so `helm version` reports the release.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
stamp="$(cat go.mod go.sum | sha256sum | cut -d' ' -f1) $(go env GOVERSION) $ldflags"

mkdir -p "$BIN_DIR"
bin="$BIN_DIR/helm"
if [[ -x "$bin" && -f "$bin.stamp" && "$(cat "$bin.stamp")" == "$stamp" ]]; then
	echo "$bin"
	exit 0
fi

printf 'build: helm %s (from helm.sh/helm/v3, takes minutes the first time)\n' "$version" >&2
tmp="$(mktemp "$BIN_DIR/.helm.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$tmp" helm.sh/helm/v3/cmd/helm
mv -f "$tmp" "$bin"
printf '%s' "$stamp" >"$bin.stamp"
echo "$bin"
