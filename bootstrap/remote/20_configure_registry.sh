#!/usr/bin/env bash
# configure-registry: a plain image registry for the platform's images on the
# node itself, reachable as {{ .Vars.registry }} from the host and from k3s'
# containerd (through a mirror, over plain HTTP on loopback).
{{ include "codex.sh.prelude" (dict "ctx" . "step" "configure-registry") }}

REGISTRY={{ .Vars.registry | quote }}
REGISTRY_HOST=${REGISTRY%%:*}
REGISTRY_PORT=${REGISTRY##*:}
[ "$REGISTRY_PORT" != "$REGISTRY" ] || REGISTRY_PORT=5000
STORAGE=/var/lib/{{ .Project }}/registry

install -d -m 0700 "$STORAGE"

if ! grep -Eq "^[^#]*[[:space:]]${REGISTRY_HOST}([[:space:]]|\$)" /etc/hosts; then
	printf '127.0.0.1 %s\n' "$REGISTRY_HOST" >>/etc/hosts
	log "added $REGISTRY_HOST to /etc/hosts"
fi

# k3s applies every file in this directory and keeps it applied.
write_file /var/lib/rancher/k3s/server/manifests/{{ .Project }}-registry.yaml 0600 <<CONF
apiVersion: v1
kind: Namespace
metadata:
  name: {{ .Project }}-registry
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: registry
  namespace: {{ .Project }}-registry
  labels:
    app.kubernetes.io/name: registry
    app.kubernetes.io/part-of: {{ .Project }}
spec:
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      app.kubernetes.io/name: registry
  template:
    metadata:
      labels:
        app.kubernetes.io/name: registry
    spec:
      hostNetwork: true
      containers:
        - name: registry
          image: docker.io/library/registry:2.8.3
          env:
            - name: REGISTRY_HTTP_ADDR
              value: 127.0.0.1:${REGISTRY_PORT}
            - name: REGISTRY_STORAGE_DELETE_ENABLED
              value: "true"
          volumeMounts:
            - name: data
              mountPath: /var/lib/registry
      volumes:
        - name: data
          hostPath:
            path: ${STORAGE}
            type: Directory
CONF

write_file /etc/rancher/k3s/registries.yaml 0600 <<CONF
# managed by codex-bootstrap (step configure-registry)
mirrors:
  "${REGISTRY}":
    endpoint:
      - "http://127.0.0.1:${REGISTRY_PORT}"
CONF
if [ "$WROTE" = 1 ]; then
	# containerd reads the mirrors only when k3s starts.
	if systemctl is-active --quiet k3s 2>/dev/null; then
		log "registry mirror changed: restarting k3s"
		systemctl restart k3s
	else
		log "k3s is not running under systemd here: it reads the mirror when it starts"
	fi
fi
log "registry ${REGISTRY} configured"
