kind: ConfigMap
{{ repeat 1000000000 "x" }}
