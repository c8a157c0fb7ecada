kind: ConfigMap
{{ range until 1000000000 }}x{{ end }}
