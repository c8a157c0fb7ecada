kind: ConfigMap
{{ uniq (until 1000000) | len }}
