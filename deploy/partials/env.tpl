{{- /*
Environment blocks. Non-secret settings come from the platform-config
ConfigMap; secret ones only as secretKeyRef to the Secrets declared in
services.yaml spec.secrets, never as values.
*/ -}}

{{- define "codex.env.from" -}}
- configMapRef:
    name: platform-config
{{- end }}

{{- /* (dict "name" ENV "secret" SECRET "key" KEY) */ -}}
{{- define "codex.env.secret" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}

{{- define "codex.env.common" -}}
- name: CODEXK8S_SERVICE_NAME
  value: {{ .Service.Name | quote }}
- name: CODEXK8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: CODEXK8S_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: CODEXK8S_HTTP_ADDR
  value: ":{{ include "codex.port" . }}"
{{- with index .Service.Vars "grpcPort" }}
- name: CODEXK8S_GRPC_ADDR
  value: ":{{ . }}"
{{- end }}
{{- if .Service.HotReload }}
{{ include "codex.env.runtime" . }}
{{- end }}
{{- end }}

{{- define "codex.env.database" -}}
{{ include "codex.env.secret" (dict "name" "CODEXK8S_DB_PASSWORD" "secret" "postgres-credentials" "key" "POSTGRES_PASSWORD") }}
{{- end }}

{{- define "codex.env.platformSecrets" -}}
{{ include "codex.env.secret" (dict "name" "CODEXK8S_GITHUB_PAT" "secret" "platform-secrets" "key" "GITHUB_PAT") }}
{{ include "codex.env.secret" (dict "name" "CODEXK8S_APP_SECRET_KEY" "secret" "platform-secrets" "key" "APP_SECRET_KEY") }}
{{- end }}
