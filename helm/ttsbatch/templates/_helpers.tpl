{{/* Chart name. */}}
{{- define "ttsbatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; components append -api, -worker, -beat, -redis. */}}
{{- define "ttsbatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ttsbatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ttsbatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ttsbatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ttsbatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ttsbatch.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret every ttsbatch container loads. */}}
{{- define "ttsbatch.secretName" -}}
{{- default (include "ttsbatch.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "ttsbatch.redisHost" -}}
{{ include "ttsbatch.fullname" . }}-redis
{{- end }}

{{/* Seconds a worker gets to stop: a chunk's deadline plus its provider-slot wait, + 30. */}}
{{- define "ttsbatch.workerGrace" -}}
{{- if .Values.worker.terminationGracePeriodSeconds }}
{{- .Values.worker.terminationGracePeriodSeconds | int }}
{{- else }}
{{- add (mul 4 (.Values.providers.limits.timeout | int)) 30 }}
{{- end }}
{{- end }}

{{/* What every ttsbatch pod shares: settings, secrets, a writable /tmp, security. */}}
{{- define "ttsbatch.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
volumes:
  - name: tmp
    emptyDir: {}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "ttsbatch.containerCommon" -}}
image: {{ include "ttsbatch.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "ttsbatch.fullname" . }}
  - secretRef:
      name: {{ include "ttsbatch.secretName" . }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}

{{/* Roll the pods when settings or credentials change. */}}
{{- define "ttsbatch.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
