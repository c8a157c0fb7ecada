kind: ConfigMap
{{- $s := "<>" }}
{{- range until 64 }}
{{- $s = js $s }}
{{- end }}
{{ $s }}
