{{- /*
Image selection. A node's own image (services.yaml `image:` or an environment
overlay) wins; otherwise the project registry, the node name and its version
(.Versions.<node>, else .Versions.platform).
*/ -}}

{{- define "codex.image.tag" -}}
{{ index .Versions .Service.Name | default (index .Versions "platform") | required "spec.versions.platform is not set" }}
{{- end }}

{{- define "codex.image" -}}
{{- if .Service.Image -}}
{{ .Service.Image }}
{{- else -}}
{{ .Vars.registry }}/{{ .Project }}/{{ .Service.Name }}:{{ include "codex.image.tag" . }}
{{- end }}
{{- end }}

{{- /* The toolchain image a hot-reloading service runs its sources with. */ -}}
{{- define "codex.image.dev" -}}
{{- if eq .Service.Kind "go" -}}
{{ .Vars.goDevImage }}
{{- else -}}
{{ .Vars.frontendDevImage }}
{{- end }}
{{- end }}
