{{/* Names and labels ------------------------------------------------------------ */}}

{{- define "workplace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-workplace, or <release> when it already contains the chart name. */}}
{{- define "workplace.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "workplace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every object; call with (dict "root" $ "component" "chat"). */}}
{{- define "workplace.labels" -}}
helm.sh/chart: {{ include "workplace.chart" .root }}
{{ include "workplace.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: workplace-roleplay
{{- end -}}

{{- define "workplace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "workplace.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every pod of this release (for the default-deny NetworkPolicy). */}}
{{- define "workplace.releaseSelector" -}}
app.kubernetes.io/name: {{ include "workplace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* <fullname>-<component>, the name of every object of one component. */}}
{{- define "workplace.componentName" -}}
{{- printf "%s-%s" (include "workplace.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Cluster DNS name of a component's Service. */}}
{{- define "workplace.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "workplace.componentName" .) .root.Release.Namespace -}}
{{- end -}}

{{- define "workplace.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Workloads ----------------------------------------------------------------------
Every Python workload with its effective settings, as YAML {items: [...]}; templates read
it with fromYaml so the feedback worker's derivation lives in one place.
role: "all" (HTTP, gRPC, workers), "api" (no Pub/Sub workers) or "worker" (no gRPC). */}}
{{- define "workplace.workloads" -}}
{{- $items := list -}}
{{- range $key := list "web" "chat" "feedback" "auth" "scenario" "watch" "tts" -}}
{{- $v := index $.Values $key -}}
{{- $cfg := omit (deepCopy $v) "worker" -}}
{{- $_ := set $cfg "name" $key -}}
{{- $_ := set $cfg "serviceName" $key -}}
{{- $_ := set $cfg "role" "all" -}}
{{- if eq $key "feedback" -}}
{{- if $v.worker.enabled -}}
{{- $_ := set $cfg "role" "api" -}}
{{- $items = append $items $cfg -}}
{{- $worker := deepCopy $cfg -}}
{{- $_ := set $worker "name" "feedback-worker" -}}
{{- $_ := set $worker "role" "worker" -}}
{{- $_ := set $worker "ports" (dict "http" $v.ports.http) -}}
{{- range $field := list "replicas" "resources" "env" "pdb" "autoscaling" -}}
{{- $_ := set $worker $field (deepCopy (index $v.worker $field)) -}}
{{- end -}}
{{- $items = append $items $worker -}}
{{- else -}}
{{- /* One Deployment does everything: it also scales on the worker's backlog. */ -}}
{{- $as := $cfg.autoscaling -}}
{{- range $field := list "pubsubSubscription" "backlogPerReplica" "activationBacklog" -}}
{{- if hasKey $v.worker.autoscaling $field -}}
{{- $_ := set $as $field (index $v.worker.autoscaling $field) -}}
{{- end -}}
{{- end -}}
{{- $items = append $items $cfg -}}
{{- end -}}
{{- else -}}
{{- $items = append $items $cfg -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{/* Environment shared by every Python container, the services' and the Pub/Sub
provisioning job's; each is called with the root context. */}}
{{- define "workplace.env.runtime" -}}
- name: WP_ENVIRONMENT
  value: {{ .Values.global.environment | quote }}
- name: WP_LOG_LEVEL
  value: {{ .Values.global.logLevel | quote }}
{{- end -}}

{{- define "workplace.env.pubsub" -}}
- name: WP_PUBSUB_PROJECT
  value: {{ .Values.global.pubsubProject | quote }}
{{- end -}}

{{- define "workplace.env.python" -}}
# Read-only root filesystem: no bytecode files, scratch space on the /tmp volume.
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: TMPDIR
  value: /tmp
- name: HOME
  value: /tmp
{{- end -}}

{{/* Container env of one workload; call with (dict "root" $ "w" $workload). */}}
{{- define "workplace.env" -}}
{{- $root := .root -}}
{{- $w := .w -}}
{{- $g := $root.Values.global -}}
- name: WP_SERVICE_NAME
  value: {{ $w.serviceName | quote }}
{{ include "workplace.env.runtime" $root }}
- name: WP_HTTP_HOST
  value: "0.0.0.0"
- name: WP_HTTP_PORT
  value: {{ $w.ports.http | quote }}
{{- if $w.ports.grpc }}
- name: WP_GRPC_PORT
  value: {{ $w.ports.grpc | quote }}
{{- end }}
{{ include "workplace.env.pubsub" $root }}
- name: WP_REDIS_URL
  value: {{ $g.redisUrl | quote }}
- name: WP_AI_PROVIDER
  value: {{ $g.aiProvider | quote }}
{{- if $w.uses.database }}
- name: WP_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $g.database.secretName }}
      key: {{ $g.database.secretKey }}
{{- end }}
{{- if $w.uses.gemini }}
- name: WP_GEMINI_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $g.gemini.secretName }}
      key: {{ $g.gemini.secretKey }}
      # No secret: the offline engines answer instead.
      optional: true
{{- end }}
{{- if $g.otlpEndpoint }}
- name: WP_OTLP_ENDPOINT
  value: {{ $g.otlpEndpoint | quote }}
{{- end }}
{{- if eq $w.role "api" }}
- name: WP_RUN_WORKERS
  value: "false"
{{- else if eq $w.role "worker" }}
- name: WP_RUN_GRPC
  value: "false"
- name: WP_RUN_WORKERS
  value: "true"
{{- end }}
{{- if eq $w.name "web" }}
- name: WP_WEB_CHAT_GRPC_ADDR
  value: {{ printf "%s:%v" (include "workplace.serviceHost" (dict "root" $root "component" "chat")) $root.Values.chat.ports.grpc | quote }}
- name: WP_WEB_FEEDBACK_GRPC_ADDR
  value: {{ printf "%s:%v" (include "workplace.serviceHost" (dict "root" $root "component" "feedback")) $root.Values.feedback.ports.grpc | quote }}
{{- end }}
{{ include "workplace.env.python" $root }}
{{- range $name, $value := $w.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* PromQL for KEDA's prometheus trigger: requests per second served by one workload's
pods, HTTP and gRPC together. The services expose no in-flight gauge yet
(deploy/keda/README.md), so the rate of completed requests stands in for it. */}}
{{- define "workplace.inFlightQuery" -}}
{{- $sel := printf "namespace=\"%s\",container=\"%s\"" .root.Release.Namespace .w.name -}}
{{- /* In-flight HTTP requests (SSE streams stay in flight while they stream) plus gRPC calls. */ -}}
{{- printf "(sum(http_requests_inprogress{%s}) or vector(0)) + (sum(grpc_server_inprogress{%s}) or vector(0))" $sel $sel -}}
{{- end -}}
