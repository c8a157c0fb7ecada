kind: ConfigMap
{{ $n := int (mul 100000 100000) }}
{{ repeat $n "ab" }}
