{{- define "deep" }}{{ $s := repeat 8000000 "x" }}{{ include "deep" . }}{{ end -}}
kind: ConfigMap
{{ include "deep" . }}
