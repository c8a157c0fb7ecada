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

{{- /* The main container's image and command: the built image in prod; the
sources of the workspace under a watcher elsewhere, as the workspace owner:
air for Go, Vite's dev server (with HMR) for frontends. The dev images
carry the toolchains (Go with air, Node.js with Vite), so nothing is
downloaded at start. */ -}}
{{- define "shop.container" -}}
{{- if .Service.HotReload -}}
{{- $src := printf "%s/%s" .Runtime.Workspace.MountPath .Service.Name -}}
{{- $poll := index .Config "SHOP_WATCH_POLLING" | default "false" -}}
{{- /* The container waits for its sources (sync or a git source fills the
workspace) and then changes into them. Its working directory is the
workspace's root: a missing one would be created by the runtime as root,
and the owner could not write the sources there. */ -}}
{{- if eq .Service.Kind "go" -}}
image: {{ index .Config "SHOP_GO_DEV_IMAGE" | default .Vars.goDevImage }}
command:
  - sh
  - -c
  - 'until [ -f "$0/.air.toml" ]; do sleep 0.5; done; cd "$0" && exec air -c .air.toml -build.poll="$1"'
  - {{ $src }}
  - {{ $poll | quote }}
{{- else -}}
image: {{ index .Config "SHOP_NODE_DEV_IMAGE" | default .Vars.nodeDevImage }}
command:
  - sh
  - -c
  - 'until [ -f "$0/vite.config.js" ]; do sleep 0.5; done; cd "$0" && exec vite --config vite.config.js'
  - {{ $src }}
{{- end }}
workingDir: {{ .Runtime.Workspace.MountPath }}
volumeMounts:
  - name: src
    mountPath: {{ .Runtime.Workspace.MountPath }}
securityContext:
  runAsUser: {{ .Runtime.Workspace.UID }}
  runAsGroup: {{ .Runtime.Workspace.GID }}
  allowPrivilegeEscalation: false
{{- else -}}
image: {{ include "shop.image" . }}
{{- end }}
{{- end }}

{{- /* Pod-level pieces matching "shop.container": the workspace claim and
its fsGroup, and, when SHOP_DEV_NODE_LABEL names a label, the dev nodes
that carry it (label and NoSchedule taint KEY=true). */ -}}
{{- define "shop.pod" -}}
{{- if .Service.HotReload -}}
securityContext:
  fsGroup: {{ .Runtime.Workspace.FSGroup }}
terminationGracePeriodSeconds: 2
volumes:
  - name: src
    persistentVolumeClaim:
      claimName: {{ .Runtime.Workspace.ClaimName | default "workspace" }}
{{- with index .Config "SHOP_DEV_NODE_LABEL" }}
nodeSelector:
  {{ . | quote }}: "true"
tolerations:
  - {key: {{ . | quote }}, operator: Equal, value: "true", effect: NoSchedule}
{{- end }}
{{- end }}
{{- end }}

{{- /* Environment the watchers need (empty in prod): build caches on the
workspace, so a new pod rebuilds warm; no module downloads. */ -}}
{{- define "shop.devEnv" -}}
{{- if .Service.HotReload -}}
- name: HOME
  value: /tmp
- name: GOCACHE
  value: {{ .Runtime.Workspace.MountPath }}/.cache/go
- name: GOPROXY
  value: "off"
- name: VITE_CACHE_DIR
  value: {{ .Runtime.Workspace.MountPath }}/.cache/vite-{{ .Service.Name }}
- name: VITE_USE_POLLING
  value: {{ index .Config "SHOP_WATCH_POLLING" | default "false" | quote }}
{{- end }}
{{- end }}

{{- define "shop.redisPassword" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: shopfront-redis, key: password}
{{- end }}
