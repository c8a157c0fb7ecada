kind: ConfigMap
{{ range $i := 300000000 }}{{ end }}
