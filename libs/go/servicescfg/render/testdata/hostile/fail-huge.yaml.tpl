kind: ConfigMap
{{ fail (repeat 4000000 "x") }}
