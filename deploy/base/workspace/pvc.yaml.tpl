{{- /* The shared workspace of a non-prod namespace: sources that agents edit
and hot-reloading services run from. The node exists only where the runtime
declares a workspace (its `when` in services.yaml). */ -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  {{- include "codex.metadata.named" (dict "ctx" . "name" (include "codex.workspace.claimName" .)) | nindent 2 }}
spec:
  accessModes:
    - {{ .Runtime.Workspace.AccessMode | default "ReadWriteOnce" }}
  {{- with .Runtime.Workspace.StorageClass }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ .Runtime.Workspace.Size | default "10Gi" }}
