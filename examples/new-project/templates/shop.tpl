{{- /* Helpers of the shopfront stack. Labels are built as a map and printed
with toYaml; objects other than the node's own name write their metadata
themselves with "shop.labels". */ -}}

{{- define "shop.labels" -}}
{{- $labels := dict
    "app.kubernetes.io/name" .Service.Name
    "app.kubernetes.io/part-of" .Project
    "app.kubernetes.io/managed-by" "codex-bootstrap"
    "codex-k8s.dev/env" .Env -}}
{{- with .Slot }}{{ $_ := set $labels "codex-k8s.dev/slot" . }}{{ end -}}
{{ toYaml $labels }}
{{- end }}

{{- define "shop.meta" -}}
metadata:
  name: {{ .Service.Name }}
  namespace: {{ .Namespace }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
{{- end }}

{{- define "shop.selector" -}}
app.kubernetes.io/name: {{ .Service.Name }}
{{- end }}

{{- define "shop.host" -}}
{{- $domain := index .Config "SHOP_DOMAIN" | default .Vars.domain -}}
{{ if eq .Runtime.Profile "prod" }}{{ $domain }}{{ else }}{{ .Namespace }}.{{ $domain }}{{ end }}
{{- end }}

{{- define "shop.image" -}}
{{ .Service.Image | default (printf "%s/%s:%s" .Vars.registry .Service.Name .Versions.shopfront) }}
{{- end }}

{{- /* The main container's image and command: the built image in prod, the
sources under a watcher (air / Vite) elsewhere, as the workspace owner. */ -}}
{{- define "shop.container" -}}
{{- if .Service.HotReload -}}
{{- $src := printf "%s/%s" .Runtime.Workspace.MountPath .Service.Name -}}
{{- if eq .Service.Kind "go" -}}
image: docker.io/cosmtrek/air:v1.61.7
command: ["air", "-c", ".air.toml"]
{{- else -}}
image: docker.io/library/node:22-alpine
command: ["sh", "-c", "npm install && exec npm run dev -- --host 0.0.0.0 --port 3000"]
{{- end }}
workingDir: {{ $src }}
volumeMounts:
  - name: src
    mountPath: {{ .Runtime.Workspace.MountPath }}
securityContext:
  runAsUser: {{ .Runtime.Workspace.UID }}
  runAsGroup: {{ .Runtime.Workspace.GID }}
{{- else -}}
image: {{ include "shop.image" . }}
{{- end }}
{{- end }}

{{- /* Pod-level pieces matching "shop.container". */ -}}
{{- define "shop.pod" -}}
{{- if .Service.HotReload -}}
securityContext:
  fsGroup: {{ .Runtime.Workspace.FSGroup }}
volumes:
  - name: src
    persistentVolumeClaim:
      claimName: {{ .Runtime.Workspace.ClaimName | default "workspace" }}
{{- end }}
{{- end }}

{{- /* Environment the watchers need (empty in prod): caches in the workspace. */ -}}
{{- define "shop.devEnv" -}}
{{- if .Service.HotReload -}}
- name: HOME
  value: /tmp
- name: GOCACHE
  value: {{ .Runtime.Workspace.MountPath }}/.cache/go
- name: npm_config_cache
  value: {{ .Runtime.Workspace.MountPath }}/.cache/npm
{{- end }}
{{- end }}

{{- define "shop.redisPassword" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: shopfront-redis, key: password}
{{- end }}
