#!/usr/bin/env bash
# Builds the local control-plane binaries from the tools modules under tools/
# into a cache directory outside git. Nothing built here is committed.
#
#   tools/build.sh [GROUP...]      GROUP: kubernetes, etcd, kwok, coredns (default: all)
#
# Environment:
#   CODEX_CACHE_DIR   cache root (default: $HOME/.cache/codex-bootstrap)
#   CLUSTER_BIN_DIR   where binaries go (default: $CODEX_CACHE_DIR/cluster/bin)
#   CLUSTER_GOCACHE   Go build cache used for these builds
#                     (default: $CODEX_CACHE_DIR/cluster/go-build)
#
# A group is rebuilt only when its stamp (a hash of its go.mod, go.sum, the
# build flags and the Go version) differs from the one recorded next to the
# binaries, so a second run is a no-op. Builds go to a temporary directory and
# are moved into place only when complete: a failed build never leaves a
# half-written binary that would later be taken as present.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_ROOT="${CODEX_CACHE_DIR:-$HOME/.cache/codex-bootstrap}/cluster"
BIN_DIR="${CLUSTER_BIN_DIR:-$CACHE_ROOT/bin}"
SHARE_DIR="$CACHE_ROOT/share"
LOG_DIR="$CACHE_ROOT/logs"
export GOCACHE="${CLUSTER_GOCACHE:-$CACHE_ROOT/go-build}"
# The tools modules are built on their own, never as part of a workspace.
export GOWORK=off
export CGO_ENABLED=0

log() { printf 'build: %s\n' "$*" >&2; }

kube_ldflags() {
	# Same variables as kubernetes' hack/lib/version.sh, so `kubectl version`
	# and /version report the release instead of v0.0.0-master. buildDate is
	# the module's publication time, which keeps the link reproducible.
	local version date minor
	version="$(cd "$MODULE_DIR" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
	date="$(cd "$MODULE_DIR" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
	minor="${version#v1.}"
	minor="${minor%%.*}"
	local d=() pkg
	for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		d+=("-X=$pkg.gitVersion=$version"
			"-X=$pkg.gitMajor=1"
			"-X=$pkg.gitMinor=$minor"
			"-X=$pkg.gitTreeState=clean"
			"-X=$pkg.buildDate=$date")
	done
	echo "-s -w ${d[*]}"
}

# group_spec GROUP -> sets MODULE_DIR, PKGS (array), BINS (array), LDFLAGS,
# and optionally ASSET_MODULE and ASSETS (files of that module copied to
# $SHARE_DIR/GROUP).
group_spec() {
	ASSET_MODULE=""
	ASSETS=()
	case "$1" in
	kubernetes)
		MODULE_DIR="$TOOLS_DIR/kubernetes"
		PKGS=(k8s.io/kubernetes/cmd/kube-apiserver
			k8s.io/kubernetes/cmd/kube-controller-manager
			k8s.io/kubernetes/cmd/kube-scheduler
			k8s.io/kubernetes/cmd/kubectl
			k8s.io/kubernetes/cmd/kubelet
			k8s.io/kubernetes/cmd/kube-proxy)
		BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
		LDFLAGS="$(kube_ldflags)"
		;;
	etcd)
		MODULE_DIR="$TOOLS_DIR/etcd"
		PKGS=(go.etcd.io/etcd/server/v3)
		BINS=(etcd)
		LDFLAGS="-s -w"
		;;
	kwok)
		MODULE_DIR="$TOOLS_DIR/kwok"
		# kwokctl is not built: cluster.sh starts every component itself.
		PKGS=(sigs.k8s.io/kwok/cmd/kwok)
		BINS=(kwok)
		# kwok's version (pkg/consts.Version) is already right in the
		# module source; nothing to stamp.
		LDFLAGS="-s -w"
		# kwok runs with --enable-crds=Stage; cluster.sh applies this CRD.
		ASSET_MODULE=sigs.k8s.io/kwok
		ASSETS=(kustomize/crd/bases/kwok.x-k8s.io_stages.yaml)
		;;
	coredns)
		# The real node's cluster DNS (test/cluster/realnode.sh).
		MODULE_DIR="$TOOLS_DIR/coredns"
		PKGS=(github.com/coredns/coredns)
		BINS=(coredns)
		LDFLAGS="-s -w"
		;;
	*)
		echo "build: unknown group '$1' (want kubernetes, etcd, kwok or coredns)" >&2
		return 2
		;;
	esac
}

stamp_of() {
	{
		go version
		echo "$LDFLAGS"
		echo "${PKGS[*]} ${ASSETS[*]}"
		cat "$MODULE_DIR/go.mod" "$MODULE_DIR/go.sum"
	} | sha256sum | cut -d' ' -f1
}

build_group() {
	local group="$1"
	group_spec "$group"
	local stamp want_stamp b missing=0
	want_stamp="$(stamp_of)"
	stamp="$(cat "$BIN_DIR/.$group.stamp" 2>/dev/null || true)"
	for b in "${BINS[@]}"; do
		[[ -x "$BIN_DIR/$b" ]] || missing=1
	done
	for b in "${ASSETS[@]}"; do
		[[ -f "$SHARE_DIR/$group/$(basename "$b")" ]] || missing=1
	done
	if [[ $missing == 0 && "$stamp" == "$want_stamp" ]]; then
		log "$group: up to date (${BINS[*]})"
		return 0
	fi
	mkdir -p "$BIN_DIR" "$LOG_DIR" "$GOCACHE"
	local tmp logf start
	tmp="$(mktemp -d "$BIN_DIR/.build-$group.XXXXXX")"
	logf="$LOG_DIR/build-$group.log"
	start=$SECONDS
	log "$group: building ${BINS[*]} (log: $logf)"
	# One `go build -o DIR` for all commands of a group: packages shared by
	# the commands are compiled once. A single command is built to its file
	# name directly (go would name etcd's `server`, after its import path).
	local out="$tmp/"
	[[ ${#PKGS[@]} -gt 1 ]] || out="$tmp/${BINS[0]}"
	if ! (cd "$MODULE_DIR" && go build -trimpath -ldflags "$LDFLAGS" -o "$out" "${PKGS[@]}") >"$logf" 2>&1; then
		rm -rf "$tmp"
		log "$group: BUILD FAILED after $((SECONDS - start))s; last lines of $logf:"
		tail -n 20 "$logf" >&2
		return 1
	fi
	if [[ ${#ASSETS[@]} -gt 0 ]]; then
		local dir
		dir="$(cd "$MODULE_DIR" && go list -m -f '{{.Dir}}' "$ASSET_MODULE")"
		mkdir -p "$SHARE_DIR/$group"
		for b in "${ASSETS[@]}"; do
			cp "$dir/$b" "$SHARE_DIR/$group/"
			chmod 0644 "$SHARE_DIR/$group/$(basename "$b")"
		done
	fi
	for b in "${BINS[@]}"; do
		mv -f "$tmp/$b" "$BIN_DIR/$b"
	done
	rm -rf "$tmp"
	echo "$want_stamp" >"$BIN_DIR/.$group.stamp"
	log "$group: built in $((SECONDS - start))s"
}

main() {
	local groups=("$@")
	[[ ${#groups[@]} -gt 0 ]] || groups=(etcd kwok kubernetes coredns)
	local g
	for g in "${groups[@]}"; do
		build_group "$g"
	done
}

main "$@"
