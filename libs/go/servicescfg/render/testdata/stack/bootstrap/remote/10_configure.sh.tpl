#!/usr/bin/env bash
# Rendered by codex-bootstrap install; no orchestration here.
set -euo pipefail
{{- /* Partials serve scripts too; .Service is not set here. */}}
{{ range $name, $version := .Versions -}}
echo "{{ $name }}={{ $version }}" >> /etc/codex-k8s/versions
{{ end -}}
echo "domain: {{ .Config.CODEXK8S_DOMAIN }}, workspace: {{ .Runtime.Workspace.MountPath | default "none" }}"
