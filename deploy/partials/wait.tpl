{{- /*
Init container that waits until a TCP endpoint accepts connections, so a pod
restarted on its own (not through reconcile) does not crash-loop while a
dependency comes back. (dict "ctx" . "host" HOST "port" PORT)
*/ -}}

{{- define "codex.wait.for" -}}
{{- $ctx := .ctx -}}
- name: wait-for-{{ .host }}
  image: docker.io/library/busybox:{{ index $ctx.Versions "busybox" | default "1.36" }}
  imagePullPolicy: IfNotPresent
  command:
    - sh
    - -c
    - until nc -z -w 2 {{ .host }} {{ .port }}; do echo "waiting for {{ .host }}:{{ .port }}"; sleep 2; done
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
  resources:
    {{- include "codex.resources.small" . | nindent 4 }}
{{- end }}
