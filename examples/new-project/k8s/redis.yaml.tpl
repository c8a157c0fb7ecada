apiVersion: v1
kind: Service
{{ include "shop.meta" . }}
spec:
  clusterIP: None
  selector:
    {{- include "shop.selector" . | nindent 4 }}
  ports:
    - {name: redis, port: 6379, targetPort: redis}
---
apiVersion: apps/v1
kind: StatefulSet
{{ include "shop.meta" . }}
spec:
  serviceName: redis
  replicas: 1
  selector:
    matchLabels:
      {{- include "shop.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "shop.labels" . | nindent 8 }}
    spec:
      containers:
        - name: redis
          image: docker.io/library/redis:{{ .Versions.redis }}-alpine
          args: ["--appendonly", "yes", "--requirepass", "$(REDIS_PASSWORD)"]
          env:
            {{- include "shop.redisPassword" . | nindent 12 }}
          ports:
            - {name: redis, containerPort: 6379}
          readinessProbe:
            exec:
              command: ["sh", "-c", "redis-cli -a \"$REDIS_PASSWORD\" --no-auth-warning ping | grep -q PONG"]
            periodSeconds: 5
          volumeMounts:
            - {name: data, mountPath: /data}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: 1Gi
