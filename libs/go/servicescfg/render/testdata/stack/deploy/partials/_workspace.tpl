{{- define "workspace.mount" -}}
{{- if .Runtime.Workspace.Enabled -}}
- name: workspace
  mountPath: {{ .Runtime.Workspace.MountPath }}
{{- end }}
{{- end }}

{{- define "workspace.securityContext" -}}
{{- if .Runtime.Workspace.Enabled -}}
{{ dict "runAsUser" .Runtime.Workspace.UID "runAsGroup" .Runtime.Workspace.GID "fsGroup" .Runtime.Workspace.FSGroup | toYaml }}
{{- else -}}
{}
{{- end }}
{{- end }}
