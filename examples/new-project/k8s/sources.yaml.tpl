apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Runtime.Workspace.ClaimName | default "workspace" }}
  namespace: {{ .Namespace }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  {{- with .Runtime.Workspace.StorageClass | default (index .Config "SHOP_WORKSPACE_STORAGE_CLASS") }}
  storageClassName: {{ . }}
  {{- end }}
  accessModes: ["{{ .Runtime.Workspace.AccessMode | default "ReadWriteOnce" }}"]
  resources:
    requests:
      storage: {{ .Runtime.Workspace.Size | default "2Gi" }}
