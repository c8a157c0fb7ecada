kind: ConfigMap
{{- $s := "ab" }}
{{- range until 64 }}
{{- $s = printf "%s%s" $s $s }}
{{- end }}
{{ $s }}
