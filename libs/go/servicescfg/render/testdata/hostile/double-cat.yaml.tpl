kind: ConfigMap
{{- $s := "ab" }}
{{- range until 64 }}
{{- $s = cat $s $s }}
{{- end }}
{{ $s }}
