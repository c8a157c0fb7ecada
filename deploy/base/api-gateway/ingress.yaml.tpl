{{- /* The platform's public entry: https://<host>/ with a cert-manager certificate. */ -}}
{{ include "codex.ingress" (dict "ctx" . "host" (include "codex.host" .)) }}
