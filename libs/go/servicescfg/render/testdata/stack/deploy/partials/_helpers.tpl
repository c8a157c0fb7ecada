{{/* Names and labels shared by every manifest. */}}
{{- define "app.fullname" -}}
{{ .Project }}-{{ .Service.Name }}
{{- end }}

{{- define "app.labels" -}}
app.kubernetes.io/name: {{ .Service.Name }}
app.kubernetes.io/part-of: {{ .Project }}
app.kubernetes.io/component: {{ .Service.Group }}
codex-k8s.dev/env: {{ .Env }}
{{- with .Slot }}
codex-k8s.dev/slot: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "app.image" -}}
{{ required "the service has no image" .Service.Image }}
{{- end }}
