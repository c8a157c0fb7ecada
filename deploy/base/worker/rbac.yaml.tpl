{{- /* The worker starts agent-run Jobs in its own namespace and follows their pods. */ -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
automountServiceAccountToken: true
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
rules:
  - apiGroups: ["batch"]
    resources: ["jobs"]
    verbs: ["get", "list", "watch", "create", "delete"]
  - apiGroups: [""]
    resources: ["pods", "pods/log"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get", "list", "watch", "create", "update", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .Service.Name }}
subjects:
  - kind: ServiceAccount
    name: {{ .Service.Name }}
    namespace: {{ .Namespace }}
