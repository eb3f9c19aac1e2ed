{{/* Names: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "switchboard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (media, operator, redis). Call with (dict "root" $ "component" "media"). */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchboard.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" .root.Values.image.registry .repository $tag }}
{{- else }}
{{- printf "%s:%s" .repository $tag }}
{{- end }}
{{- end }}

{{- define "switchboard.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "switchboard.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{- define "switchboard.redisAddress" -}}
{{- if .Values.redis.bundled.enabled }}
{{- printf "%s-redis:6379" (include "switchboard.fullname" .) }}
{{- else }}
{{- required "redis.address is required when redis.bundled.enabled is false" .Values.redis.address }}
{{- end }}
{{- end }}

{{/* Env shared by both programs: Redis, its password, the API key pair. */}}
{{- define "switchboard.commonEnv" -}}
- name: SWITCHBOARD_REDIS__ADDRESS
  value: {{ include "switchboard.redisAddress" . | quote }}
{{- if .Values.redis.passwordSecret.name }}
- name: SWITCHBOARD_REDIS__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.redis.passwordSecret.name | quote }}, key: {{ .Values.redis.passwordSecret.key | quote }}}
{{- end }}
- name: SWITCHBOARD_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "switchboard.apiKeysSecret" . | quote }}, key: {{ .Values.apiKeys.keyKey | quote }}}
- name: SWITCHBOARD_API_SECRET
  valueFrom:
    secretKeyRef: {name: {{ include "switchboard.apiKeysSecret" . | quote }}, key: {{ .Values.apiKeys.secretKey | quote }}}
{{- end }}

{{/*
RBAC from deploy/rbac/<file> (one source for the rules; files/rbac is a
symlink to it), renamed for this release and bound to its namespace.
Call with (dict "root" $ "file" "operator.yaml" "component" "operator").
*/}}
{{- define "switchboard.rbac" -}}
{{- $root := .root }}
{{- $name := printf "%s-%s" (include "switchboard.fullname" $root) .component }}
{{- $text := $root.Files.Get (printf "files/rbac/%s" .file) }}
{{- if not $text }}{{ fail (printf "files/rbac/%s is missing from the chart (a symlink to deploy/rbac/)" .file) }}{{ end }}
{{- range $doc := regexSplit "(?m)^---\\s*$" $text -1 }}
{{- $obj := fromYaml $doc }}
{{- if $obj.kind }}
{{- $meta := dict "name" $name "labels" (fromYaml (include "switchboard.labels" $root)) }}
{{- if has $obj.kind (list "ServiceAccount" "Role" "RoleBinding") }}
{{- $_ := set $meta "namespace" $root.Release.Namespace }}
{{- end }}
{{- $_ := set $obj "metadata" $meta }}
{{- if $obj.roleRef }}
{{- $_ := set $obj.roleRef "name" $name }}
{{- $subjects := list }}
{{- range $obj.subjects }}
{{- $subjects = append $subjects (dict "kind" .kind "name" $name "namespace" $root.Release.Namespace) }}
{{- end }}
{{- $_ := set $obj "subjects" $subjects }}
{{- end }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
