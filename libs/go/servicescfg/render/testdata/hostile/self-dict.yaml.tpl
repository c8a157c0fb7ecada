kind: ConfigMap
{{- $d := dict }}
{{ $_ := set $d "self" $d }}
{{ $d }}
