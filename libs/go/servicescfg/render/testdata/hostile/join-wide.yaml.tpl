kind: ConfigMap
{{ join (repeat 1000000 "x") (until 100000) }}
