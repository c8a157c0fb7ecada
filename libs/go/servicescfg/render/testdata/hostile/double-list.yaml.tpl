kind: ConfigMap
{{- $l := list 1 }}
{{- range until 64 }}
{{- $l = list $l $l }}
{{- end }}
{{ toJson $l }}
