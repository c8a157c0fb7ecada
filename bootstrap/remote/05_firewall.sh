#!/usr/bin/env bash
# firewall: from outside, only SSH, HTTP (80) and HTTPS (443) answer. The
# Kubernetes API (6443) and every NodePort stay private: operators reach the
# API through SSH (install and reconcile --ssh tunnel it), the platform's
# ingress serves 80 and 443.
#
# One nftables table, replaced atomically on every run (idempotent). Its
# chain filters in prerouting before kube-proxy's DNAT (priority -150 <
# dstnat), so a NodePort is judged by the port the client asked for, not by
# the pod it would be forwarded to: an INPUT-only firewall lets NodePorts
# through. Traffic from the cluster's own interfaces and loopback is left
# alone; established connections (this SSH session among them) stay open,
# and the SSH port is accepted before the rule that drops the rest.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "firewall") }}

TABLE={{ printf "%s-firewall" .Project | quote }}
RULES=/etc/{{ .Project }}/firewall.nft
UNIT=/etc/systemd/system/{{ .Project }}-firewall.service

command -v nft >/dev/null 2>&1 || die "nft not found: the prepare-host step installs nftables"

# The SSH port: the one install connected to, and every port sshd listens on.
# Neither may fail the step: without them port 22 is kept open.
ssh_ports=$(
	{
		printf '%s\n' "${CODEXK8S_SSH_PORT:-}"
		sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }' || true
	} | { grep -E '^[0-9]{1,5}$' || true; } | sort -un | paste -sd, -
)
[ -n "$ssh_ports" ] || ssh_ports=22
log "public TCP ports: SSH ($ssh_ports), 80, 443; everything else is dropped"

write_file "$RULES" 0600 <<CONF
# managed by codex-bootstrap (step firewall); applied with: nft -f $RULES
table inet $TABLE
delete table inet $TABLE
table inet $TABLE {
	set public_tcp {
		type inet_service
		elements = { $ssh_ports, 80, 443 }
	}
	chain prerouting {
		type filter hook prerouting priority -150; policy accept;
		iifname { "lo", "cni0", "flannel.1", "flannel-v6.1" } accept
		ct state established,related accept
		ct state invalid drop
		meta l4proto { icmp, ipv6-icmp } accept
		udp sport 67 udp dport 68 accept
		udp sport 547 udp dport 546 accept
		tcp dport @public_tcp accept
		counter drop
	}
}
CONF
nft -f "$RULES"
log "rules applied (table inet $TABLE)"

# Applied again at boot, before the network and k3s come up.
if [ -d /run/systemd/system ]; then
	write_file "$UNIT" 0644 <<CONF
# managed by codex-bootstrap (step firewall)
[Unit]
Description={{ .Project }} firewall: only SSH, HTTP and HTTPS from outside
DefaultDependencies=no
Before=network-pre.target k3s.service
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$(command -v nft) -f $RULES

[Install]
WantedBy=multi-user.target
CONF
	[ "$WROTE" = 0 ] || systemctl daemon-reload
	systemctl enable --quiet "$(basename "$UNIT")"
else
	log "no systemd here: the rules apply until the next boot"
fi
