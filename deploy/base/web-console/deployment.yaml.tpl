{{- /* The staff console (non-prod only, see `when` in services.yaml). With hot
reload it is the Vite dev server over the workspace sources. */ -}}
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
      containers:
        - name: {{ .Service.Name }}
          {{- include "codex.container.runtime" . | nindent 10 }}
          ports:
            {{- include "codex.container.ports" . | nindent 12 }}
          env:
            {{- include "codex.env.common" . | nindent 12 }}
            - name: VITE_API_BASE_URL
              value: {{ printf "https://%s" (include "codex.host" .) | quote }}
          {{- include "codex.probes" . | nindent 10 }}
