{{- /* Loads the catalog's search index definitions into redis, once per
release (the release is in the Job's name, and Job templates are immutable). */ -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: db-migrate-{{ .Versions.shopfront | replace "." "-" }}
  namespace: {{ .Namespace }}
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  backoffLimit: 2
  template:
    metadata:
      labels:
        {{- include "shop.labels" . | nindent 8 }}
    spec:
      restartPolicy: OnFailure
      containers:
        - name: migrate
          image: {{ printf "%s/catalog:%s" .Vars.registry .Versions.shopfront }}
          args: ["migrate", "--redis", "redis:6379"]
          env:
            {{- include "shop.redisPassword" . | nindent 12 }}
