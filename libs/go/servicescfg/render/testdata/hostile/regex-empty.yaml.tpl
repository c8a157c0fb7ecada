kind: ConfigMap
{{ regexReplaceAll "" (repeat 100000 "x") (repeat 1000 "y") }}
