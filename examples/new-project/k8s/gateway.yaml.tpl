{{- /* nginx in front of the shop: /api to catalog, the rest to storefront.
Upstreams are resolved per request, so the gateway starts before storefront
(a later group) exists. */ -}}
{{- $svc := printf "%s.svc.cluster.local" .Namespace -}}
apiVersion: v1
kind: ConfigMap
{{ include "shop.meta" . }}
data:
  default.conf: |
    resolver kube-dns.kube-system.svc.cluster.local valid=10s;
    server {
      listen 8080;
      location = /healthz { return 200 "ok\n"; }
      location /api/ {
        set $catalog http://catalog.{{ $svc }};
        proxy_pass $catalog;
      }
      location / {
        set $storefront http://storefront.{{ $svc }};
        proxy_pass $storefront;
      }
    }
---
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
      containers:
        - name: nginx
          image: docker.io/nginxinc/nginx-unprivileged:{{ .Versions.nginx }}-alpine
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
          volumeMounts:
            - {name: conf, mountPath: /etc/nginx/conf.d}
      volumes:
        - name: conf
          configMap: {name: gateway}
---
apiVersion: v1
kind: Service
{{ include "shop.meta" . }}
spec:
  selector:
    {{- include "shop.selector" . | nindent 4 }}
  ports:
    - {name: http, port: 80, targetPort: http}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
{{ include "shop.meta" . }}
spec:
  rules:
    - host: {{ include "shop.host" . }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: gateway
                port: {name: http}
