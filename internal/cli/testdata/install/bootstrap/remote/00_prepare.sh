#!/usr/bin/env bash
# prepare-host: the workspace owner and the domain.
set -euo pipefail
getent passwd {{ .Runtime.Workspace.UID }} >/dev/null || useradd --uid {{ .Runtime.Workspace.UID }} --create-home codex
echo "workspace owner $(id -un {{ .Runtime.Workspace.UID }})"
printf '%s\n' "$DEMO_DOMAIN" > /etc/{{ .Project }}-domain
install -m 0755 files/tool.sh /usr/local/bin/demo-tool
demo-tool
