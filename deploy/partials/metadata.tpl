{{- /*
Labels, annotations and object metadata shared by every object of the
codex-k8s stack. Partials taking the root context expect .Service (node
manifests); the ".named" variants take (dict "ctx" . "name" NAME ...).
*/ -}}

{{- /* Stable labels: used in selectors, so they never change for a node. */ -}}
{{- define "codex.selectorLabels" -}}
app.kubernetes.io/name: {{ .Service.Name }}
app.kubernetes.io/part-of: {{ .Project }}
{{- end }}

{{- define "codex.labels" -}}
{{ include "codex.selectorLabels" . }}
app.kubernetes.io/component: {{ .Service.Group }}
app.kubernetes.io/managed-by: codex-bootstrap
codex-k8s.dev/env: {{ .Env }}
{{- with .Slot }}
codex-k8s.dev/slot: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "codex.annotations" -}}
codex-k8s.dev/runtime: {{ .Runtime.Profile | quote }}
codex-k8s.dev/hot-reload: {{ .Service.HotReload | quote }}
{{- end }}

{{- /* (dict "ctx" . "name" NAME ["annotations" EXTRA-YAML]) */ -}}
{{- define "codex.metadata.named" -}}
{{- $ctx := .ctx -}}
name: {{ .name }}
namespace: {{ $ctx.Namespace }}
labels:
  {{- include "codex.labels" $ctx | nindent 2 }}
annotations:
  {{- include "codex.annotations" $ctx | nindent 2 }}
  {{- with get . "annotations" }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end }}

{{- /* Metadata of the object named after its node. */ -}}
{{- define "codex.metadata" -}}
{{ include "codex.metadata.named" (dict "ctx" . "name" .Service.Name) }}
{{- end }}

{{- /* metadata of a pod template. */ -}}
{{- define "codex.pod.metadata" -}}
labels:
  {{- include "codex.labels" . | nindent 2 }}
annotations:
  {{- include "codex.annotations" . | nindent 2 }}
{{- end }}
