{{- /*
What the worker needs to deploy and remove ai-slots, and no more:
- it creates slot namespaces and binds {{ .Project }}-slot-deployer in each
  (the RoleBinding a slot deploy makes, apply.Options.SlotDeployer): RBAC lets
  it bind that ClusterRole and no other;
- the ValidatingAdmissionPolicy below lets it create, change and delete only
  namespaces labelled as this stack's slots, and make RoleBindings only in
  them: RBAC cannot say "namespaces with this label".
The platform stack's metadata.name is its project name, which slot
namespaces carry in codex-k8s.dev/stack.
*/ -}}
{{- $sa := printf "system:serviceaccount:%s:worker" .Namespace -}}
{{- $slot := printf "has(%%[1]s.metadata.labels) && 'codex-k8s.dev/slot' in %%[1]s.metadata.labels && 'codex-k8s.dev/stack' in %%[1]s.metadata.labels && %%[1]s.metadata.labels['codex-k8s.dev/stack'] == '%s' && 'app.kubernetes.io/managed-by' in %%[1]s.metadata.labels && %%[1]s.metadata.labels['app.kubernetes.io/managed-by'] == 'codex-bootstrap'" .Project -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Project }}-slot-deployer
  # One object for every environment of the stack: no environment label,
  # or each environment's reconcile would change it.
  labels:
    {{- include "codex.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/managed-by: codex-bootstrap
# Bound in each slot namespace only: what a slot's reconcile applies, waits
# for and prunes there.
rules:
  - apiGroups: [""]
    resources: [configmaps, secrets, services, serviceaccounts, persistentvolumeclaims]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [""]
    resources: [pods, pods/log, events, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [apps]
    resources: [deployments, statefulsets, daemonsets]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [apps]
    resources: [replicasets]
    verbs: [get, list, watch]
  - apiGroups: [batch]
    resources: [jobs, cronjobs]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [networking.k8s.io]
    resources: [ingresses, networkpolicies]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [policy]
    resources: [poddisruptionbudgets]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [autoscaling]
    resources: [horizontalpodautoscalers]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [roles, rolebindings]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ .Namespace }}-worker-slots
  labels:
    {{- include "codex.labels" . | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [get, list, watch, create, patch, update, delete]
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [rolebindings]
    verbs: [get, create, patch, update]
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [clusterroles]
    verbs: [bind]
    resourceNames: [{{ .Project }}-slot-deployer]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Namespace }}-worker-slots
  labels:
    {{- include "codex.labels" . | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ .Namespace }}-worker-slots
subjects:
  - kind: ServiceAccount
    name: worker
    namespace: {{ .Namespace }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ .Namespace }}-worker-slots
  labels:
    {{- include "codex.labels" . | nindent 4 }}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE, DELETE]
        resources: [namespaces]
      - apiGroups: [rbac.authorization.k8s.io]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE, DELETE]
        resources: [rolebindings]
  matchConditions:
    - name: worker-only
      expression: {{ printf "request.userInfo.username == '%s'" $sa | quote }}
  variables:
    - name: isNamespace
      expression: "request.resource.resource == 'namespaces'"
    - name: oldIsSlot
      expression: {{ printf $slot "oldObject" | printf "oldObject != null && %s" | quote }}
    - name: newIsSlot
      expression: {{ printf $slot "object" | printf "object != null && %s" | quote }}
    - name: inSlot
      expression: {{ printf $slot "namespaceObject" | printf "namespaceObject != null && %s" | quote }}
  validations:
    - expression: "!variables.isNamespace || ((request.operation == 'CREATE' || variables.oldIsSlot) && (request.operation == 'DELETE' || variables.newIsSlot))"
      messageExpression: {{ printf "'the worker may create, change and delete only namespaces labelled as slots of stack %s (app.kubernetes.io/managed-by=codex-bootstrap, codex-k8s.dev/stack=%s, codex-k8s.dev/slot): ' + request.name + ' is not one'" .Project .Project | quote }}
      reason: Forbidden
    - expression: "variables.isNamespace || variables.inSlot"
      messageExpression: {{ printf "'the worker may bind roles only in slot namespaces of stack %s: ' + request.namespace + ' is not one'" .Project | quote }}
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ .Namespace }}-worker-slots
  labels:
    {{- include "codex.labels" . | nindent 4 }}
spec:
  policyName: {{ .Namespace }}-worker-slots
  validationActions: [Deny]
