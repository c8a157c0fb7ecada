apiVersion: apps/v1
kind: Deployment
{{ include "shop.meta" . }}
spec:
  replicas: 1
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
        - name: storefront
          {{- include "shop.container" . | nindent 10 }}
          env:
            - {name: PUBLIC_API_URL, value: "http://{{ include "shop.host" . }}/api"}
            {{- with include "shop.devEnv" . }}{{ nindent 12 . }}{{ end }}
          ports:
            - {name: http, containerPort: 3000}
          readinessProbe:
            httpGet: {path: /, port: http}
---
apiVersion: v1
kind: Service
{{ include "shop.meta" . }}
spec:
  selector:
    {{- include "shop.selector" . | nindent 4 }}
  ports:
    - {name: http, port: 80, targetPort: http}
