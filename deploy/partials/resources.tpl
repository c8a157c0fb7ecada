{{- /*
Resources. A watcher compiles inside the pod, so hot reload asks for more
memory than the built binary needs. Nodes tune the latter with vars cpu,
memory and memoryLimit.
*/ -}}

{{- define "codex.resources" -}}
{{- if .Service.HotReload -}}
requests:
  cpu: 100m
  memory: 256Mi
limits:
  memory: {{ index .Service.Vars "hotReloadMemoryLimit" | default "2Gi" }}
{{- else -}}
requests:
  cpu: {{ index .Service.Vars "cpu" | default "50m" }}
  memory: {{ index .Service.Vars "memory" | default "64Mi" }}
limits:
  memory: {{ index .Service.Vars "memoryLimit" | default "256Mi" }}
{{- end }}
{{- end }}

{{- define "codex.resources.small" -}}
requests:
  cpu: 10m
  memory: 16Mi
limits:
  memory: 32Mi
{{- end }}
