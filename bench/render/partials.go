package renderbench

// partials are the define blocks shared, byte for byte, by the stack
// (partials/_helpers.tpl) and the chart (templates/_helpers.tpl). Every one
// takes the per-service context $c built at the top of each manifest (a dict
// with the same keys on both sides), so the two engines run the same template
// text and must print the same objects.
const partials = `{{/* The object name: a DNS label. */}}
{{- define "bench.fullname" -}}
{{- .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels a selector matches on: stable across releases. */}}
{{- define "bench.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bench.fullname" . }}
app.kubernetes.io/instance: {{ printf "%s-%s" .project .env }}
{{- end -}}

{{- define "bench.labels" -}}
{{ include "bench.selectorLabels" . }}
app.kubernetes.io/part-of: {{ .project }}
app.kubernetes.io/component: {{ .group }}
app.kubernetes.io/version: {{ index .versions "app" | quote }}
app.kubernetes.io/managed-by: codex-bootstrap
codex-k8s.dev/env: {{ .env }}
{{- end -}}

{{- define "bench.annotations" -}}
codex-k8s.dev/owner: {{ printf "team-%s" .group }}
codex-k8s.dev/depends-on: {{ join "," .deps | quote }}
checksum/config: {{ include "bench.configData" . | sha256sum }}
{{- end -}}

{{- define "bench.metadata" -}}
name: {{ include "bench.fullname" . }}
namespace: {{ .namespace }}
labels:
  {{- include "bench.labels" . | nindent 2 }}
annotations:
  {{- include "bench.annotations" . | nindent 2 }}
{{- end -}}

{{- define "bench.image" -}}
{{ .global.registry }}/{{ .image }}:{{ index .versions "app" }}
{{- end -}}

{{- define "bench.host" -}}
{{ .name }}.{{ .global.domain }}
{{- end -}}

{{- define "bench.hasIngress" -}}
{{- has .group (list "edge" "frontend") -}}
{{- end -}}

{{- define "bench.ports" -}}
- name: http
  containerPort: {{ .vars.port }}
  protocol: TCP
- name: metrics
  containerPort: 9090
  protocol: TCP
{{- end -}}

{{/* One HTTP probe; takes (dict "path" P "delay" D "period" S). */}}
{{- define "bench.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .delay }}
periodSeconds: {{ .period }}
timeoutSeconds: 2
failureThreshold: 3
{{- end -}}

{{- define "bench.probes" -}}
livenessProbe:
  {{- include "bench.probe" (dict "path" .vars.healthPath "delay" 10 "period" 10) | nindent 2 }}
readinessProbe:
  {{- include "bench.probe" (dict "path" .vars.healthPath "delay" 2 "period" 5) | nindent 2 }}
startupProbe:
  {{- include "bench.probe" (dict "path" .vars.healthPath "delay" 0 "period" 2) | nindent 2 }}
{{- end -}}

{{- define "bench.env" -}}
- name: APP_NAME
  value: {{ .name | quote }}
- name: APP_ENV
  value: {{ .env | quote }}
- name: APP_NAMESPACE
  value: {{ .namespace | quote }}
- name: LOG_LEVEL
  value: {{ .global.logLevel | quote }}
{{- range $k, $v := .vars }}
- name: {{ printf "APP_%s" ($k | snakecase | upper) }}
  value: {{ $v | quote }}
{{- end }}
{{- range .deps }}
- name: {{ printf "%s_ADDR" (. | replace "-" "_" | upper) }}
  value: {{ printf "%s.%s.svc:80" . $.namespace | quote }}
{{- end }}
{{- end -}}

{{- define "bench.envFrom" -}}
{{- if ne (include "bench.hasIngress" .) "true" }}
- configMapRef:
    name: {{ include "bench.fullname" . }}-config
{{- end }}
- secretRef:
    name: {{ .project }}-secrets
    optional: true
{{- end -}}

{{- define "bench.resources" -}}
{{- toYaml (dict "requests" (dict "cpu" .vars.cpu "memory" .vars.memory) "limits" (dict "memory" .vars.memory)) }}
{{- end -}}

{{- define "bench.securityContext" -}}
runAsNonRoot: true
runAsUser: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ not .hot }}
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* One init container per dependency that waits until it answers. */}}
{{- define "bench.waitFor" -}}
{{- range .deps }}
- name: {{ printf "wait-%s" . | trunc 63 }}
  image: {{ $.global.registry }}/busybox:1.36
  command: ["sh", "-c", {{ printf "until nc -z %s.%s.svc 80; do sleep 1; done" . $.namespace | quote }}]
  resources:
    {{- include "bench.resources" (dict "vars" (dict "cpu" "10m" "memory" "16Mi")) | nindent 4 }}
  securityContext:
    {{- include "bench.securityContext" (dict "hot" false) | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "bench.command" -}}
{{- if .hot }}
command: ["air", "-c", {{ printf "%s/%s/.air.toml" .workspace .name | quote }}]
workingDir: {{ printf "%s/%s" .workspace .name }}
{{- end }}
{{- end -}}

{{- define "bench.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .hot }}
- name: workspace
  persistentVolumeClaim:
    claimName: workspace
{{- end }}
{{- end -}}

{{- define "bench.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .hot }}
- name: workspace
  mountPath: {{ .workspace }}
{{- end }}
{{- end -}}

{{- define "bench.servicePorts" -}}
- name: http
  port: 80
  targetPort: http
- name: metrics
  port: 9090
  targetPort: metrics
{{- end -}}

{{- define "bench.configData" -}}
SERVICE_NAME: {{ .name | quote }}
LOG_LEVEL: {{ .global.logLevel | quote }}
TRACING_ENDPOINT: {{ .global.tracing | quote }}
{{- range $k, $v := .vars }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "bench.ingressTLS" -}}
- hosts:
    - {{ include "bench.host" . }}
  secretName: {{ include "bench.fullname" . }}-tls
{{- end -}}

{{- define "bench.ingressRules" -}}
- host: {{ include "bench.host" . }}
  http:
    paths:
      - path: {{ .vars.path }}
        pathType: Prefix
        backend:
          service:
            name: {{ include "bench.fullname" . }}
            port:
              name: http
{{- end -}}
`

// The bodies of the three manifests of a service, after the line that builds
// $c. Identical in the stack and the chart.
const deploymentBody = `apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "bench.metadata" $c | nindent 2 }}
spec:
  replicas: {{ $c.vars.replicas }}
  selector:
    matchLabels:
      {{- include "bench.selectorLabels" $c | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "bench.labels" $c | nindent 8 }}
      annotations:
        {{- include "bench.annotations" $c | nindent 8 }}
    spec:
      securityContext:
        fsGroup: 1000
      {{- if $c.deps }}
      initContainers:
        {{- include "bench.waitFor" $c | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $c.name }}
          image: {{ include "bench.image" $c }}
          {{- include "bench.command" $c | nindent 10 }}
          ports:
            {{- include "bench.ports" $c | nindent 12 }}
          env:
            {{- include "bench.env" $c | nindent 12 }}
          envFrom:
            {{- include "bench.envFrom" $c | nindent 12 }}
          {{- include "bench.probes" $c | nindent 10 }}
          resources:
            {{- include "bench.resources" $c | nindent 12 }}
          securityContext:
            {{- include "bench.securityContext" $c | nindent 12 }}
          volumeMounts:
            {{- include "bench.volumeMounts" $c | nindent 12 }}
      volumes:
        {{- include "bench.volumes" $c | nindent 8 }}
`

const serviceBody = `apiVersion: v1
kind: Service
metadata:
  {{- include "bench.metadata" $c | nindent 2 }}
spec:
  type: ClusterIP
  selector:
    {{- include "bench.selectorLabels" $c | nindent 4 }}
  ports:
    {{- include "bench.servicePorts" $c | nindent 4 }}
`

const configMapBody = `apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "bench.metadata" (merge (dict "name" (printf "%s-config" $c.name)) $c) | nindent 2 }}
data:
  {{- include "bench.configData" $c | nindent 2 }}
`

const ingressBody = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "bench.metadata" $c | nindent 2 }}
spec:
  ingressClassName: {{ $c.global.ingressClass }}
  tls:
    {{- include "bench.ingressTLS" $c | nindent 4 }}
  rules:
    {{- include "bench.ingressRules" $c | nindent 4 }}
`
