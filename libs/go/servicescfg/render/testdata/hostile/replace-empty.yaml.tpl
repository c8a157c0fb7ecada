kind: ConfigMap
{{ replace "" (repeat 1000 "y") (repeat 100000 "x") }}
