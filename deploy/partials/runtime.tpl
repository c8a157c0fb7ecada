{{- /*
Runtime parity. Every Go and frontend service renders its container through
"codex.container.runtime": with hot reload (.Service.HotReload: a non-prod
runtime and kind go/frontend) it runs the sources from the shared workspace
under a file watcher (air for Go, the Vite dev server for frontends) as the
workspace's uid/gid; otherwise it runs the built image's own entrypoint.
*/ -}}

{{- define "codex.workspace.claimName" -}}
{{ .Runtime.Workspace.ClaimName | default "workspace" }}
{{- end }}

{{- /* Where the node's sources live inside the workspace. */ -}}
{{- define "codex.workspace.src" -}}
{{ .Runtime.Workspace.MountPath }}/{{ index .Service.Vars "src" | default (printf "services/%s" .Service.Name) }}
{{- end }}

{{- /* The port the service listens on for HTTP (probes, Service, ingress). */ -}}
{{- define "codex.port" -}}
{{ index .Service.Vars "port" | default "8080" }}
{{- end }}

{{- /* Container fields: image, command, mounts, security and resources. */ -}}
{{- define "codex.container.runtime" -}}
{{- if .Service.HotReload -}}
{{- if not .Runtime.Workspace.Enabled -}}
{{- fail (printf "service %s hot-reloads in runtime %s, which declares no workspace" .Service.Name .Runtime.Profile) -}}
{{- end -}}
image: {{ include "codex.image.dev" . }}
imagePullPolicy: IfNotPresent
{{- /* The working directory is the workspace's root, and the command waits
for the sources (sync, or the workspace's git source) before changing into
them: a missing working directory would be created by the runtime as root,
where the workspace's owner could not write. Nothing is installed or
downloaded at start: dependencies come with the dev image or the sources. */}}
workingDir: {{ .Runtime.Workspace.MountPath }}
command: ["sh", "-c"]
{{- if eq .Service.Kind "go" }}
args:
  - 'until [ -d "$0" ]; do sleep 0.5; done; cd "$0" && exec air --tmp_dir /tmp/air --build.cmd "go build -o /tmp/air/$1 $2" --build.bin "/tmp/air/$1"'
  - {{ include "codex.workspace.src" . }}
  - {{ .Service.Name }}
  - {{ index .Service.Vars "main" | default (printf "./cmd/%s" .Service.Name) }}
{{- else }}
args:
  - 'until [ -f "$0/package.json" ]; do sleep 0.5; done; cd "$0" && exec npm run dev -- --host 0.0.0.0 --port "$1" --strictPort'
  - {{ include "codex.workspace.src" . }}
  - {{ include "codex.port" . | quote }}
{{- end }}
{{- else -}}
image: {{ include "codex.image" . }}
imagePullPolicy: {{ .Vars.imagePullPolicy }}
{{- end }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- if .Service.HotReload }}
  - name: workspace
    mountPath: {{ .Runtime.Workspace.MountPath }}
{{- end }}
securityContext:
  {{- include "codex.container.securityContext" . | nindent 2 }}
resources:
  {{- include "codex.resources" . | nindent 2 }}
{{- end }}

{{- /* Environment a watcher needs: caches inside the workspace, no toolchain, module or package downloads. */ -}}
{{- define "codex.env.runtime" -}}
- name: HOME
  value: /tmp
{{- if eq .Service.Kind "go" }}
- name: GOCACHE
  value: {{ .Runtime.Workspace.MountPath }}/.cache/go-build
- name: GOMODCACHE
  value: {{ .Runtime.Workspace.MountPath }}/.cache/go-mod
- name: GOFLAGS
  value: -buildvcs=false
- name: GOTOOLCHAIN
  value: local
- name: GOPROXY
  value: "off"
{{- else }}
- name: npm_config_cache
  value: {{ .Runtime.Workspace.MountPath }}/.cache/npm
- name: npm_config_offline
  value: "true"
{{- end }}
{{- end }}

{{- /* Pod fields shared by every workload of the platform. */ -}}
{{- define "codex.pod.spec" -}}
enableServiceLinks: false
{{- with index .Service.Vars "serviceAccount" }}
serviceAccountName: {{ . }}
{{- else }}
automountServiceAccountToken: false
{{- end }}
terminationGracePeriodSeconds: 30
securityContext:
  {{- include "codex.pod.securityContext" . | nindent 2 }}
volumes:
  - name: tmp
    emptyDir: {}
{{- if .Service.HotReload }}
  - name: workspace
    persistentVolumeClaim:
      claimName: {{ include "codex.workspace.claimName" . }}
{{- end }}
{{- end }}

{{- /* Replicas, rollout and selector of a Deployment. A watcher owns its build
output and the workspace volume may be ReadWriteOnce: one pod, replaced rather
than rolled. */ -}}
{{- define "codex.deployment.spec" -}}
replicas: {{ ternary "1" (index .Service.Vars "replicas" | default .Vars.replicas) .Service.HotReload }}
revisionHistoryLimit: 3
strategy:
  type: {{ ternary "Recreate" "RollingUpdate" .Service.HotReload }}
selector:
  matchLabels:
    {{- include "codex.selectorLabels" . | nindent 4 }}
{{- end }}
