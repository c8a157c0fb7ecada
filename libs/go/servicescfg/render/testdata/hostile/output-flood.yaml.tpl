kind: ConfigMap
{{- $s := repeat 1000000 "x" }}
{{ range until 100 }}{{ $s }}{{ end }}
