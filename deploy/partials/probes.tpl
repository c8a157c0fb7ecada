{{- /*
HTTP probes on the container port named "http". Go services serve /healthz
(alive) and /readyz (ready to take traffic); frontends answer on /. Under hot
reload the first build happens after the pod starts, so the startup probe
allows up to ten minutes.
*/ -}}

{{- define "codex.probes" -}}
{{- $frontend := eq .Service.Kind "frontend" -}}
{{- $live := ternary "/" "/healthz" $frontend -}}
{{- $ready := ternary "/" "/readyz" $frontend -}}
startupProbe:
  httpGet:
    path: {{ $live }}
    port: http
  periodSeconds: 5
  failureThreshold: {{ ternary 120 24 .Service.HotReload }}
readinessProbe:
  httpGet:
    path: {{ $ready }}
    port: http
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: {{ $live }}
    port: http
  periodSeconds: 20
  timeoutSeconds: 3
  failureThreshold: 3
{{- end }}
