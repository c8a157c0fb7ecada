{{ include "codex.service" . }}
