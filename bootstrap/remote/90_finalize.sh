#!/usr/bin/env bash
# finalize: checks what install relies on after the steps and leaves a short
# report on the server (root-only, no secret in it), which it also prints.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "finalize") }}

KUBECONFIG_PATH=/etc/rancher/k3s/k3s.yaml # written by the cluster step (k3s)
REPORT=/var/lib/{{ .Project }}/install-report
TABLE={{ printf "%s-firewall" .Project | quote }}

[ -s "$KUBECONFIG_PATH" ] || die "no kubeconfig at $KUBECONFIG_PATH: the cluster step did not finish"
api=$(awk '$1 == "server:" { print $2; exit }' "$KUBECONFIG_PATH")
[ -n "$api" ] || die "$KUBECONFIG_PATH names no API server"

cluster="k3s not installed (the cluster came from another step)"
if command -v k3s >/dev/null 2>&1; then
	cluster="k3s $(k3s --version | awk 'NR == 1 { print $3 }')"
fi
firewall="missing"
if command -v nft >/dev/null 2>&1 && nft list table inet "$TABLE" >/dev/null 2>&1; then
	firewall="table inet $TABLE: $(nft list set inet "$TABLE" public_tcp | awk -F'[{}]' '/elements/ { gsub(/ /, "", $2); print $2 }') open"
fi
[ "$firewall" != missing ] || die "the firewall (table inet $TABLE) is not in place: run install --only firewall"
owner=$(getent passwd {{ .Runtime.Workspace.UID | default 1000 }} | cut -d: -f1 || true)

write_file "$REPORT" 0600 <<REPORT
project:   {{ .Project }} ({{ .Env }})
cluster:   $cluster
api:       $api (through SSH only)
firewall:  $firewall
workspace: ${owner:-none} ({{ .Runtime.Workspace.UID | default 1000 }}:{{ .Runtime.Workspace.GID | default 1000 }})
REPORT
while IFS= read -r line; do log "$line"; done <"$REPORT"
