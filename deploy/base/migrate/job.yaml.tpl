{{- /* Database migrations, once per image: the Job's name carries a digest of
the image, so a new release runs a new Job while reconciling the same release
finds the finished one (no ttlSecondsAfterFinished: it stays as the record). */ -}}
{{- $name := printf "%s-%s" .Service.Name (include "codex.image" . | sha256sum | trunc 10) -}}
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "codex.metadata.named" (dict "ctx" . "name" $name) | nindent 2 }}
spec:
  backoffLimit: {{ index .Service.Vars "backoffLimit" | default "3" }}
  template:
    metadata:
      {{- include "codex.pod.metadata" . | nindent 6 }}
    spec:
      restartPolicy: Never
      {{- include "codex.pod.spec" . | nindent 6 }}
      initContainers:
        {{- include "codex.wait.for" (dict "ctx" . "host" "postgres" "port" "5432") | nindent 8 }}
      containers:
        - name: {{ .Service.Name }}
          {{- include "codex.container.runtime" . | nindent 10 }}
          args: ["up"]
          envFrom:
            {{- include "codex.env.from" . | nindent 12 }}
          env:
            {{- include "codex.env.common" . | nindent 12 }}
            {{- include "codex.env.database" . | nindent 12 }}
