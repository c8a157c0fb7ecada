kind: ConfigMap
{{- $d := dict }}
{{- range until 64 }}
{{- $d = dict "a" $d "b" $d }}
{{- end }}
{{ $d }}
