{{- $image := .Service.Image | default (printf "docker.io/library/postgres:%s-alpine" (index .Versions "postgres")) -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  {{- include "codex.metadata" . | nindent 2 }}
spec:
  serviceName: {{ .Service.Name }}
  replicas: 1
  selector:
    matchLabels:
      {{- include "codex.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      {{- include "codex.pod.metadata" . | nindent 6 }}
    spec:
      enableServiceLinks: false
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 60
      securityContext:
        # uid/gid of the postgres user in the alpine image
        runAsNonRoot: true
        runAsUser: 70
        runAsGroup: 70
        fsGroup: 70
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: postgres
          image: {{ $image }}
          imagePullPolicy: IfNotPresent
          ports:
            - name: postgres
              containerPort: 5432
              protocol: TCP
          env:
            - name: POSTGRES_DB
              value: {{ .Vars.databaseName | quote }}
            - name: POSTGRES_USER
              value: {{ .Vars.databaseUser | quote }}
            {{- include "codex.env.secret" (dict "name" "POSTGRES_PASSWORD" "secret" "postgres-credentials" "key" "POSTGRES_PASSWORD") | nindent 12 }}
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
          readinessProbe:
            exec:
              command: ["sh", "-c", "pg_isready -h 127.0.0.1 -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\""]
            periodSeconds: 5
            failureThreshold: 6
          livenessProbe:
            exec:
              command: ["sh", "-c", "pg_isready -h 127.0.0.1 -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\""]
            initialDelaySeconds: 30
            periodSeconds: 20
            failureThreshold: 3
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
          resources:
            requests:
              cpu: 100m
              memory: 256Mi
            limits:
              memory: {{ index .Service.Vars "memoryLimit" | default "1Gi" }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
  volumeClaimTemplates:
    - metadata:
        name: data
        labels:
          {{- include "codex.selectorLabels" . | nindent 10 }}
      spec:
        accessModes: ["ReadWriteOnce"]
        {{- with index .Service.Vars "storageClass" }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ index .Service.Vars "storage" | default "10Gi" }}
