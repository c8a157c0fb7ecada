{{- /* Headless: gives postgres-0.postgres a stable name and "postgres" resolves to the ready pod. */ -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
spec:
  clusterIP: None
  selector:
    {{- include "codex.selectorLabels" . | nindent 4 }}
  ports:
    - name: postgres
      port: 5432
      targetPort: postgres
      protocol: TCP
