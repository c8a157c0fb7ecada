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
sysctl -q -p "$conf"
