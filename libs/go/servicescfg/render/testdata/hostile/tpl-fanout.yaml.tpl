kind: ConfigMap
{{- $d := dict "t" "{{ tpl .t . }}{{ tpl .t . }}" }}
{{ tpl $d.t $d }}
