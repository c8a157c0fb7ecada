#!/usr/bin/env bash
# tune-node: file-watch limits for the hot-reloading catalog and storefront.
# Assumes a host already running Kubernetes (for instance one installed with
# the codex-k8s platform's own stack).
set -euo pipefail

conf=/etc/sysctl.d/60-{{ .Project }}-watchers.conf
cat >"$conf.new" <<'CONF'
fs.inotify.max_user_watches = 524288
fs.inotify.max_user_instances = 1024
CONF
if cmp -s "$conf.new" "$conf"; then
	rm -f "$conf.new"
else
	mv "$conf.new" "$conf"
	echo "tune-node: wrote $conf" >&2
fi
# A server whose kernel settings are read-only (a container) keeps the
# file for its next boot.
sysctl -q -p "$conf" || echo "tune-node: $conf not applied now (read-only kernel settings here); it applies at boot" >&2
