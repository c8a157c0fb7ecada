kind: Secret
stringData:
  a: {{ randAlphaNum 16 }}
  b: {{ uuidv4 }}
  c: {{ now | date "2006" }}
  d: {{ (genCA "x" 365).Cert | b64enc }}
  e: {{ htpasswd "u" "p" }}
  f: {{ date "2006" .Project }}
  g: {{ toDate "2006" "2024" }}
