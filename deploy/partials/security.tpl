{{- /*
Pod and container security. Hot-reloading pods run as the workspace owner so
that sources, caches and build output written by agents and services share
one uid/gid; everything else runs as an unprivileged user.
*/ -}}

{{- define "codex.pod.securityContext" -}}
runAsNonRoot: true
{{- if .Service.HotReload }}
runAsUser: {{ .Runtime.Workspace.UID | default 1000 }}
runAsGroup: {{ .Runtime.Workspace.GID | default 1000 }}
fsGroup: {{ .Runtime.Workspace.FSGroup | default 1000 }}
fsGroupChangePolicy: OnRootMismatch
{{- else }}
runAsUser: 65532
runAsGroup: 65532
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "codex.container.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ not (or .Service.HotReload (eq .Service.Kind "frontend")) }}
capabilities:
  drop: ["ALL"]
{{- end }}
