{{- define "env" -}}
- name: LOG_LEVEL
  value: {{ index .Vars "log-level" | default "info" | quote }}
- name: HOT_RELOAD
  value: {{ .Runtime.HotReload | quote }}
- name: PUBLIC_URL
  value: {{ tpl "https://{{ .Project }}.{{ .Config.CODEXK8S_DOMAIN }}" . | quote }}
{{- end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.fullname" . }}
  namespace: {{ .Namespace }}
  labels:
    {{- include "app.labels" . | nindent 4 }}
spec:
  replicas: {{ if eq .Runtime.Profile "prod" }}3{{ else }}1{{ end }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .Service.Name }}
  template:
    metadata:
      labels:
        {{- include "app.labels" . | nindent 8 }}
    spec:
      securityContext:
        {{- include "workspace.securityContext" . | nindent 8 }}
      containers:
        - name: {{ .Service.Name }}
          image: {{ include "app.image" . }}
          env:
            {{- include "env" . | nindent 12 }}
          {{- with include "workspace.mount" . }}
          volumeMounts:
            {{- . | nindent 12 }}
          {{- end }}
