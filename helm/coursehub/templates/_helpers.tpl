{{/* Labels on every object of this chart. */}}
{{- define "coursehub.labels" -}}
{{ include "coursehub.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The labels selectors match on (stable across upgrades). */}}
{{- define "coursehub.selectorLabels" -}}
app.kubernetes.io/name: coursehub
{{- end }}

{{/* The coursehub image (hub image: coursehub installed). */}}
{{- define "coursehub.image" -}}
{{ .Values.coursehub.image.name }}:{{ .Values.coursehub.image.tag }}
{{- end }}

{{/* Mount of the settings ConfigMap, shared by the grading service and the scaler. */}}
{{- define "coursehub.settingsVolume" -}}
- name: settings
  configMap:
    name: coursehub-settings
{{- end }}

{{- define "coursehub.settingsMount" -}}
- name: settings
  mountPath: /etc/coursehub
  readOnly: true
{{- end }}

{{/* Restricted pod security for our containers. */}}
{{- define "coursehub.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The grading storage claim: an existing one, or the chart's. */}}
{{- define "coursehub.gradingClaim" -}}
{{ .Values.grading.storage.existingClaim | default (printf "%s-storage" .Values.grading.name) }}
{{- end }}

{{/* Environment for PostgreSQL: the password from the Secret (the URL in the settings has none). */}}
{{- define "coursehub.gradingDatabaseEnv" -}}
{{- if .Values.grading.database.postgres -}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.grading.database.passwordSecret.name }}
      key: {{ .Values.grading.database.passwordSecret.key }}
- name: PGSSLMODE
  value: {{ .Values.grading.database.sslmode }}
{{- end }}
{{- end }}

{{/* The namespace of autograde Jobs: its own, so the worker's rights never reach the release's
     Secrets (default "<release namespace>-autograde"). */}}
{{- define "coursehub.autogradeNamespace" -}}
{{ .Values.autograde.namespace | default (printf "%s-autograde" .Release.Namespace) }}
{{- end }}

{{/* Each course's shared nbgrader directory (a ReadWriteMany claim) in the grading service and
     worker pods, at settings.state_dir/course-dirs/<course>. */}}
{{- define "coursehub.courseVolumes" -}}
{{- range .Values.courseStorage.courses }}
- name: course-{{ . }}
  persistentVolumeClaim:
    claimName: coursehub-course-{{ . }}
{{- end }}
{{- end }}

{{- define "coursehub.courseMounts" -}}
{{- range .Values.courseStorage.courses }}
- name: course-{{ . }}
  mountPath: /srv/coursehub/state/course-dirs/{{ . }}
{{- end }}
{{- end }}

{{/* Scheduling pass-through for our workloads (nodeSelector, tolerations, affinity, priority,
     image pull secrets), from .Values.coursehub.scheduling. */}}
{{- define "coursehub.podScheduling" -}}
{{- with .Values.coursehub.scheduling.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.coursehub.scheduling.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.coursehub.scheduling.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.coursehub.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Pod-level restricted security context. */}}
{{- define "coursehub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}
