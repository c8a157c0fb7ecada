{{- /* The worker runs agent Jobs and deploys slot namespaces; it talks to the
control-plane over gRPC and to the database for its queue. */ -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
spec:
  {{- include "codex.deployment.spec" . | nindent 2 }}
  template:
    metadata:
      {{- include "codex.pod.metadata" . | nindent 6 }}
    spec:
      {{- include "codex.pod.spec" . | nindent 6 }}
      initContainers:
        {{- include "codex.wait.for" (dict "ctx" . "host" "postgres" "port" "5432") | nindent 8 }}
        {{- include "codex.wait.for" (dict "ctx" . "host" "control-plane" "port" "9090") | nindent 8 }}
      containers:
        - name: {{ .Service.Name }}
          {{- include "codex.container.runtime" . | nindent 10 }}
          ports:
            {{- include "codex.container.ports" . | nindent 12 }}
          envFrom:
            {{- include "codex.env.from" . | nindent 12 }}
          env:
            {{- include "codex.env.common" . | nindent 12 }}
            {{- include "codex.env.database" . | nindent 12 }}
            {{- include "codex.env.platformSecrets" . | nindent 12 }}
          {{- include "codex.probes" . | nindent 10 }}
