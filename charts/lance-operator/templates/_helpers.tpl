{{/* Chart name, truncated to the 63-character DNS label limit. */}}
{{- define "lance-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, suffixed with the chart name unless it already contains it. */}}
{{- define "lance-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "lance-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lance-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lance-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "lance-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lance
{{- end }}

{{- define "lance-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lance-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "lance-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The operator's API permissions. Kept equal to operator/src/kube/rbac.ts OPERATOR_RULES by test/chart/. */}}
{{- define "lance-operator.rules" -}}
- apiGroups: ["lance.dev"]
  resources: ["lanceclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["lance.dev"]
  resources: ["lanceclusters/status"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create", "update"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# LanceRestore controller
- apiGroups: ["lance.dev"]
  resources: ["lancerestores"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["lance.dev"]
  resources: ["lancerestores/status"]
  verbs: ["update"]
- apiGroups: ["lance.dev"]
  resources: ["lanceclusters"]
  verbs: ["create", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["delete"]
{{- end }}

{{/* Leader election (LEADER_ELECTION_RULES in operator/src/kube/rbac.ts), in the release namespace only. */}}
{{- define "lance-operator.leaderRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}
