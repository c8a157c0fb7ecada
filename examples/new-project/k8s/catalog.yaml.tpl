apiVersion: apps/v1
kind: Deployment
{{ include "shop.meta" . }}
spec:
  replicas: {{ index .Service.Vars "replicas" | default "1" }}
  selector:
    matchLabels:
      {{- include "shop.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "shop.labels" . | nindent 8 }}
    spec:
      {{- with include "shop.pod" . }}{{ nindent 6 . }}{{ end }}
      containers:
        - name: catalog
          {{- include "shop.container" . | nindent 10 }}
          env:
            - {name: REDIS_ADDR, value: "redis:6379"}
            - {name: LISTEN_ADDR, value: ":8080"}
            {{- include "shop.redisPassword" . | nindent 12 }}
            {{- with include "shop.devEnv" . }}{{ nindent 12 . }}{{ end }}
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
---
apiVersion: v1
kind: Service
{{ include "shop.meta" . }}
spec:
  selector:
    {{- include "shop.selector" . | nindent 4 }}
  ports:
    - {name: http, port: 80, targetPort: http}
