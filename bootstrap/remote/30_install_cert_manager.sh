#!/usr/bin/env bash
# install-cert-manager: cert-manager through k3s' Helm controller and an ACME
# issuer named {{ .Vars.clusterIssuer | quote }}, which the platform's ingresses
# reference. Without CODEXK8S_LETSENCRYPT_EMAIL there is no issuer to create.
{{ include "codex.sh.prelude" (dict "ctx" . "step" "install-cert-manager") }}

EMAIL="${CODEXK8S_LETSENCRYPT_EMAIL:-}"
MANIFESTS=/var/lib/rancher/k3s/server/manifests

if [ -z "$EMAIL" ]; then
	log "CODEXK8S_LETSENCRYPT_EMAIL is empty: no certificates will be issued"
	rm -f "$MANIFESTS/{{ .Project }}-cluster-issuer.yaml"
	exit 0
fi

write_file "$MANIFESTS/{{ .Project }}-cert-manager.yaml" 0600 <<'CONF'
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: cert-manager
  namespace: kube-system
spec:
  repo: https://charts.jetstack.io
  chart: cert-manager
  version: v1.18.2
  targetNamespace: cert-manager
  createNamespace: true
  valuesContent: |-
    crds:
      enabled: true
CONF

# Applied by k3s once cert-manager's CRDs exist (it retries until then).
write_file "$MANIFESTS/{{ .Project }}-cluster-issuer.yaml" 0600 <<CONF
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: {{ .Vars.clusterIssuer }}
spec:
  acme:
    server: https://acme-v02.api.letsencrypt.org/directory
    email: ${EMAIL}
    privateKeySecretRef:
      name: {{ .Vars.clusterIssuer }}-account-key
    solvers:
      - http01:
          ingress:
            ingressClassName: {{ .Vars.ingressClass }}
CONF
log "cert-manager and issuer {{ .Vars.clusterIssuer }} declared"
