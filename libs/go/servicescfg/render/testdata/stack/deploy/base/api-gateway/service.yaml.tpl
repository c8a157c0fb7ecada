apiVersion: v1
kind: Service
metadata:
  name: {{ include "app.fullname" . }}
  namespace: {{ .Namespace }}
  labels:
{{ include "app.labels" . | indent 4 }}
spec:
  selector:
    app.kubernetes.io/name: {{ .Service.Name }}
  ports:
    - name: http
      port: {{ index .Service.Vars "port" | default "8080" }}
