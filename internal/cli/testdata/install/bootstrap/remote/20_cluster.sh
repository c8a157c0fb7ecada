#!/usr/bin/env bash
# cluster: the kubeconfig install reads to deploy through SSH.
set -euo pipefail
install -D -m 0600 files/kubeconfig /etc/rancher/k3s/k3s.yaml
echo "kubeconfig installed"
