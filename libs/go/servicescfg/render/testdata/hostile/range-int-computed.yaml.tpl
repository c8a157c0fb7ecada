kind: ConfigMap
{{- $n := mul 30000 10000 }}
{{ range $i := $n }}{{ end }}
