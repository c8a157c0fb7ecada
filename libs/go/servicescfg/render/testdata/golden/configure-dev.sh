#!/usr/bin/env bash
# Rendered by codex-bootstrap install; no orchestration here.
set -euo pipefail
echo "control-plane=0.1.0" >> /etc/codex-k8s/versions
echo "postgres=16" >> /etc/codex-k8s/versions
echo "domain: example.test, workspace: /workspace"
