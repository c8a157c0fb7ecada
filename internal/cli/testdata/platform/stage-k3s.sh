#!/usr/bin/env bash
# stage-k3s, a step of the tests' overlay only (install_stacks_test.go): what
# an operator stages for install-k3s on a server without internet, the k3s
# binary and its installer under /opt/{{ .Project }}/k3s/ (here test doubles
# of both), and a systemctl for a host without systemd. install-k3s itself
# is the platform's own step.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "stage-k3s") }}
install -d -m 0755 /opt/{{ .Project }}/k3s
install -m 0755 files/k3s /opt/{{ .Project }}/k3s/k3s
install -m 0644 files/install.sh /opt/{{ .Project }}/k3s/install.sh
install -m 0600 files/kubeconfig /opt/{{ .Project }}/k3s/kubeconfig
install -m 0755 files/systemctl /usr/local/bin/systemctl
log "k3s staged in /opt/{{ .Project }}/k3s"
