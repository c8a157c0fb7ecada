{{- /*
Public hosts and ingress. The base domain is the operator's CODEXK8S_DOMAIN
(a bootstrap variable, so absent in a dry run without config.env: then
<project>.local). Environments prefix it with var hostPrefix; slot
environments add slot-<N>.
*/ -}}

{{- define "codex.host" -}}
{{- $domain := index .Config "CODEXK8S_DOMAIN" | default (printf "%s.local" .Project) -}}
{{- $prefix := index .Vars "hostPrefix" -}}
{{- if .Slot }}{{ $prefix = printf "slot-%s.%s" .Slot $prefix }}{{ end -}}
{{ $prefix }}{{ $domain }}
{{- end }}

{{- /* Extra ingress annotations: the cert-manager issuer when one is set. */ -}}
{{- define "codex.ingress.annotations" -}}
{{- with index .Vars "clusterIssuer" -}}
cert-manager.io/cluster-issuer: {{ . }}
{{- end }}
{{- end }}

{{- /* (dict "ctx" . "host" HOST) */ -}}
{{- define "codex.ingress.tls" -}}
- hosts:
    - {{ .host }}
  secretName: {{ .ctx.Service.Name }}-tls
{{- end }}

{{- /* (dict "ctx" . "host" HOST): one host, everything to the node's Service. */ -}}
{{- define "codex.ingress.spec" -}}
{{- $ctx := .ctx -}}
{{- with index $ctx.Vars "ingressClass" -}}
ingressClassName: {{ . }}
{{ end -}}
tls:
  {{- include "codex.ingress.tls" . | nindent 2 }}
rules:
  - host: {{ .host }}
    http:
      paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: {{ $ctx.Service.Name }}
              port:
                name: http
{{- end }}

{{- /* A whole Ingress for the node (dict "ctx" . "host" HOST). */ -}}
{{- define "codex.ingress" -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "codex.metadata.named" (dict "ctx" .ctx "name" .ctx.Service.Name "annotations" (include "codex.ingress.annotations" .ctx)) | nindent 2 }}
spec:
  {{- include "codex.ingress.spec" . | nindent 2 }}
{{- end }}
