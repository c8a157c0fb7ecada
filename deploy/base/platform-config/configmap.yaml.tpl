{{- /* Namespace-wide, non-secret platform settings; services read them with envFrom. */ -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
data:
  CODEXK8S_PROJECT: {{ .Project | quote }}
  CODEXK8S_ENV: {{ .Env | quote }}
  CODEXK8S_NAMESPACE: {{ .Namespace | quote }}
  CODEXK8S_SLOT: {{ .Slot | quote }}
  CODEXK8S_RUNTIME_PROFILE: {{ .Runtime.Profile | quote }}
  CODEXK8S_HOT_RELOAD: {{ .Runtime.HotReload | quote }}
  CODEXK8S_WORKSPACE_MOUNT_PATH: {{ .Runtime.Workspace.MountPath | quote }}
  CODEXK8S_PUBLIC_BASE_URL: {{ printf "https://%s" (include "codex.host" .) | quote }}
  CODEXK8S_LOG_LEVEL: {{ .Vars.logLevel | quote }}
  CODEXK8S_REGISTRY: {{ .Vars.registry | quote }}
  CODEXK8S_DB_HOST: "postgres"
  CODEXK8S_DB_PORT: "5432"
  CODEXK8S_DB_NAME: {{ .Vars.databaseName | quote }}
  CODEXK8S_DB_USER: {{ .Vars.databaseUser | quote }}
  CODEXK8S_DB_SSLMODE: "disable"
  CODEXK8S_CONTROL_PLANE_HTTP_URL: "http://control-plane"
  CODEXK8S_CONTROL_PLANE_GRPC_ADDR: "control-plane:9090"
