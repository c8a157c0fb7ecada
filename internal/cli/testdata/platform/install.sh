#!/bin/sh
# k3s' installer as the test host runs it (INSTALL_K3S_SKIP_DOWNLOAD: the
# binary is already in /usr/local/bin). Instead of starting a k3s server it
# writes the kubeconfig of this machine's test cluster where k3s writes its
# own, and does kube-proxy's part of a NodePort Service: a DNAT before
# routing, to a pod behind cni0.
set -eu
[ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ] || { echo "the test installer cannot download k3s" >&2; exit 1; }
install -D -m 0644 /dev/null /var/lib/rancher/k3s/test-double-version
printf '%s\n' "$INSTALL_K3S_VERSION" >/var/lib/rancher/k3s/test-double-version
install -D -m 0600 /opt/codex-k8s/k3s/kubeconfig /etc/rancher/k3s/k3s.yaml
nft -f - <<'NFT'
table ip kube-proxy-sim
delete table ip kube-proxy-sim
table ip kube-proxy-sim {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport NODEPORT dnat to POD:8080
	}
}
NFT
echo "[INFO]  test installer: k3s $INSTALL_K3S_VERSION ($INSTALL_K3S_EXEC); NodePort NODEPORT forwarded to POD:8080"
