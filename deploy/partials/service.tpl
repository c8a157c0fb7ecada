{{- /*
Ports: every service listens for HTTP on the port named "http" (var port,
8080 by default); a node with var grpcPort also exposes "grpc".
*/ -}}

{{- define "codex.container.ports" -}}
- name: http
  containerPort: {{ include "codex.port" . }}
  protocol: TCP
{{- with index .Service.Vars "grpcPort" }}
- name: grpc
  containerPort: {{ . }}
  protocol: TCP
{{- end }}
{{- end }}

{{- define "codex.service.spec" -}}
type: ClusterIP
selector:
  {{- include "codex.selectorLabels" . | nindent 2 }}
ports:
  - name: http
    port: 80
    targetPort: http
    protocol: TCP
{{- with index .Service.Vars "grpcPort" }}
  - name: grpc
    port: {{ . }}
    targetPort: grpc
    protocol: TCP
{{- end }}
{{- end }}

{{- /* The node's ClusterIP Service. */ -}}
{{- define "codex.service" -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
spec:
  {{- include "codex.service.spec" . | nindent 2 }}
{{- end }}
