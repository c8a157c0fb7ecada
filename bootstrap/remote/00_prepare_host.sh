#!/usr/bin/env bash
# prepare-host: base packages, kernel settings for Kubernetes and file
# watchers, and the account that owns the shared workspace.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "prepare-host") }}

HOST_USER="${CODEXK8S_HOST_USER:-codex}"
# The uid/gid hot-reloading pods run as (spec.runtime.non-prod.workspace).
WORKSPACE_UID={{ .Runtime.Workspace.UID | default 1000 }}
WORKSPACE_GID={{ .Runtime.Workspace.GID | default 1000 }}

# What the later steps use: curl (the k3s installer), iptables, conntrack
# and socat (k3s), nftables (the firewall step).
PACKAGES=(ca-certificates curl iptables nftables conntrack socat)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	log "base packages already installed"
else
	log "installing ${missing[*]}"
	# An install cut off during apt leaves dpkg interrupted: finish first.
	dpkg --configure -a
	# A mirror that cannot be reached is not fatal while the package
	# lists already on the server still name what is missing.
	apt-get update -q || log "apt-get update failed: installing from the package lists already on the server"
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

log "kernel modules and sysctl"
write_file /etc/modules-load.d/90-{{ .Project }}.conf 0644 <<'CONF'
overlay
br_netfilter
CONF
for module in overlay br_netfilter; do
	modprobe "$module" 2>/dev/null || log "module $module not loadable here (container host?); continuing"
done
write_file /etc/sysctl.d/90-{{ .Project }}.conf 0644 <<'CONF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
# air and Vite watch every source file of the workspace
fs.inotify.max_user_watches = 1048576
fs.inotify.max_user_instances = 8192
CONF
# -e: keys of modules that are not loaded are skipped, not fatal.
sysctl -q -e -p /etc/sysctl.d/90-{{ .Project }}.conf || log "some sysctl keys could not be applied here; they apply at boot"

log "swap off (kubelet)"
swapoff -a || true
if [ -f /etc/fstab ]; then
	sed -i -E 's@^([^#].*[[:space:]]swap[[:space:]].*)$@# \1@' /etc/fstab
fi

log "workspace owner ${WORKSPACE_UID}:${WORKSPACE_GID}"
# Ubuntu cloud images already have uid 1000 (ubuntu): reuse whoever holds it.
existing_user=$(getent passwd "$WORKSPACE_UID" | cut -d: -f1 || true)
if [ -n "$existing_user" ]; then
	[ "$existing_user" = "$HOST_USER" ] || log "uid $WORKSPACE_UID belongs to $existing_user; using it as the workspace owner"
	HOST_USER=$existing_user
elif getent passwd "$HOST_USER" >/dev/null; then
	die "user $HOST_USER exists with uid $(id -u "$HOST_USER"), not the workspace's $WORKSPACE_UID: set CODEXK8S_HOST_USER to a free name, or the workspace uid in services.yaml to $(id -u "$HOST_USER")"
else
	if ! getent group "$WORKSPACE_GID" >/dev/null; then
		getent group "$HOST_USER" >/dev/null &&
			die "group $HOST_USER exists with another gid than the workspace's $WORKSPACE_GID: set CODEXK8S_HOST_USER to a free name"
		groupadd --gid "$WORKSPACE_GID" "$HOST_USER"
	fi
	useradd --uid "$WORKSPACE_UID" --gid "$WORKSPACE_GID" --create-home --shell /bin/bash "$HOST_USER"
	log "created user $HOST_USER"
fi
[ "$(id -g "$HOST_USER")" = "$WORKSPACE_GID" ] ||
	log "$HOST_USER's primary group is $(id -g "$HOST_USER"), not $WORKSPACE_GID: pods still share the workspace through its fsGroup"
log "workspace owner is $HOST_USER ($(id -u "$HOST_USER"):$(id -g "$HOST_USER"))"

install -d -m 0755 /var/lib/{{ .Project }}
log "done"
