#!/usr/bin/env bash
# install-k3s: a single-node k3s server at the pinned version. An operator on
# a host without internet access stages the k3s binary and install script
# under /opt/{{ .Project }}/k3s/ first (airgap); otherwise they are fetched
# from the k3s project.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "install-k3s") }}

K3S_VERSION="${CODEXK8S_K3S_VERSION:?CODEXK8S_K3S_VERSION is not set}"
DOMAIN="${CODEXK8S_DOMAIN:?CODEXK8S_DOMAIN is not set}"
STAGED=/opt/{{ .Project }}/k3s

write_file /etc/rancher/k3s/config.yaml 0600 <<CONF
# managed by codex-bootstrap (step install-k3s)
write-kubeconfig-mode: "0600"
tls-san:
  - ${DOMAIN}
node-label:
  - codex-k8s.dev/project={{ .Project }}
CONF
config_changed=$WROTE

installed=""
if command -v k3s >/dev/null 2>&1; then
	installed=$(k3s --version | awk 'NR == 1 { print $3 }')
fi

if [ "$installed" = "$K3S_VERSION" ]; then
	log "k3s $K3S_VERSION already installed"
	if [ "$config_changed" = 1 ]; then
		log "configuration changed: restarting k3s"
		systemctl restart k3s
	fi
else
	log "installing k3s $K3S_VERSION (found: ${installed:-none})"
	installer=$(mktemp)
	trap 'rm -f "$installer"' EXIT
	if [ -x "$STAGED/k3s" ] && [ -f "$STAGED/install.sh" ]; then
		install -m 0755 "$STAGED/k3s" /usr/local/bin/k3s
		cp "$STAGED/install.sh" "$installer"
		export INSTALL_K3S_SKIP_DOWNLOAD=true
	else
		curl -sfL --retry 3 -o "$installer" https://get.k3s.io
	fi
	INSTALL_K3S_VERSION="$K3S_VERSION" INSTALL_K3S_EXEC=server sh "$installer"
fi

systemctl enable --now k3s
log "k3s $(k3s --version | awk 'NR == 1 { print $3 }') is running"
