{{ include "codex.ingress" (dict "ctx" . "host" (printf "console.%s" (include "codex.host" .))) }}
