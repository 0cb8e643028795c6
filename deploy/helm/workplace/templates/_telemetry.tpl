{{/* Traces and logs ------------------------------------------------------------------
The OpenTelemetry Collector (otel-collector.yaml) and what points at it: the services'
WP_OTLP_ENDPOINT / WP_TRACE_SAMPLE_RATIO / WP_GCP_PROJECT (workplace.env in _helpers.tpl) and the
gateway's tracer (workplace.envoyConfig in _envoy.tpl). docs/production.md, "Traces and logs". */}}

{{/* Ports of the collector (the image's defaults, fixed: nothing else listens in its pod). */}}
{{- define "workplace.otelCollector.ports" -}}
otlpGrpc: 4317
otlpHttp: 4318
health: 13133
metrics: 8888
{{- end -}}

{{/* Where the services send their spans (OTLP/gRPC): the chart's collector when enabled, else
global.otlpEndpoint (a collector of your own), else nothing (empty: no export). */}}
{{- define "workplace.otlpEndpoint" -}}
{{- if .Values.otelCollector.enabled -}}
{{- if .Values.global.otlpEndpoint -}}
{{- fail "global.otlpEndpoint and otelCollector.enabled both set: with the chart's collector the services send to it; leave global.otlpEndpoint empty" -}}
{{- end -}}
{{- $ports := include "workplace.otelCollector.ports" . | fromYaml -}}
{{- printf "http://%s:%v" (include "workplace.serviceHost" (dict "root" . "component" "otel-collector")) $ports.otlpGrpc -}}
{{- else -}}
{{- .Values.global.otlpEndpoint -}}
{{- end -}}
{{- end -}}

{{/* The Google Cloud project of the traces: the collector writes there, and the services' log
lines name their trace in it (WP_GCP_PROJECT). Default: global.pubsubProject. */}}
{{- define "workplace.gcpProject" -}}
{{- .Values.otelCollector.project | default .Values.global.pubsubProject -}}
{{- end -}}

{{/* The collector's configuration. Traces only: the services' metrics are scraped (Google
Managed Prometheus) and their logs are stdout lines Cloud Logging reads. memory_limiter first
(it refuses data before the pod runs out of memory), batch last (it sends what passed the other
processors in batches); resourcedetection adds the GKE cluster, location and project. */}}
{{- define "workplace.otelCollector.config" -}}
{{- $c := .Values.otelCollector -}}
{{- $ports := include "workplace.otelCollector.ports" . | fromYaml -}}
extensions:
  health_check:
    endpoint: 0.0.0.0:{{ $ports.health }}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:{{ $ports.otlpGrpc }}
      http:
        endpoint: 0.0.0.0:{{ $ports.otlpHttp }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: {{ $c.memoryLimiter.limitPercentage }}
    spike_limit_percentage: {{ $c.memoryLimiter.spikeLimitPercentage }}
  resourcedetection:
    detectors: [env, gcp]
    timeout: 5s
    override: false
  batch:
    send_batch_size: {{ $c.batch.sendBatchSize }}
    send_batch_max_size: {{ $c.batch.sendBatchMaxSize }}
    timeout: {{ $c.batch.timeout }}
exporters:
  googlecloud:
    project: {{ include "workplace.gcpProject" . }}
    # What a slow Cloud Trace leaves waiting, then dropped (spans are sampled diagnostics).
    sending_queue:
      enabled: true
      queue_size: {{ $c.queueSize }}
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: info
      encoding: json
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 0.0.0.0
                port: {{ $ports.metrics }}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, resourcedetection, batch]
      exporters: [googlecloud]
{{- end -}}

{{/* The gateway's tracer (called from workplace.envoyConfig with its config dict, which it
changes; it writes nothing itself). With the collector: an OpenTelemetry tracer on the gateway's
HTTP connection manager, so a request's trace starts at the gateway (random_sampling: the share
from otelCollector.sampleRatio) or continues the caller's W3C traceparent, and its context goes
on to the services, whose SDKs keep the decision (parent-based); the spans go to the collector
over the otel_collector cluster (HTTP/2, the collector Service's gRPC port). */}}
{{- define "workplace.envoyTracing" -}}
{{- $root := .root -}}
{{- $cfg := .cfg -}}
{{- if $root.Values.otelCollector.enabled -}}
{{- $ports := include "workplace.otelCollector.ports" $root | fromYaml -}}
{{- $manager := (index (index (index $cfg.static_resources.listeners 0).filter_chains 0).filters 0).typed_config -}}
{{- $_ := set $manager "tracing" (dict
  "random_sampling" (dict "value" (mulf $root.Values.otelCollector.sampleRatio 100.0))
  "provider" (dict
    "name" "envoy.tracers.opentelemetry"
    "typed_config" (dict
      "@type" "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
      "grpc_service" (dict "envoy_grpc" (dict "cluster_name" "otel_collector") "timeout" "1s")
      "service_name" "gateway"))) -}}
{{- /* Every request now has a trace id (sampled or not): its access log line names the trace,
so Cloud Logging joins the line to it as it does the services' lines. */ -}}
{{- range $log := ($manager.access_log | default list) -}}
{{- $format := (($log.typed_config | default dict).log_format | default dict).json_format -}}
{{- if $format -}}
{{- $_ := set $format "logging.googleapis.com/trace" (printf "projects/%s/traces/%%TRACE_ID%%" (include "workplace.gcpProject" $root)) -}}
{{- end -}}
{{- end -}}
{{- $collector := dict
  "name" "otel_collector"
  "type" "STRICT_DNS"
  "connect_timeout" "1s"
  "dns_lookup_family" "V4_ONLY"
  "typed_extension_protocol_options" (dict "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" (dict
    "@type" "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    "explicit_http_config" (dict "http2_protocol_options" dict)))
  "load_assignment" (dict
    "cluster_name" "otel_collector"
    "endpoints" (list (dict "lb_endpoints" (list (dict "endpoint" (dict "address" (dict "socket_address" (dict
      "address" (include "workplace.serviceHost" (dict "root" $root "component" "otel-collector"))
      "port_value" (int $ports.otlpGrpc))))))))) -}}
{{- $_ := set $cfg.static_resources "clusters" (append $cfg.static_resources.clusters $collector) -}}
{{- end -}}
{{- end -}}

{{/* Who may scrape the metrics ports (NetworkPolicy peers): networkPolicy.prometheus, and with
monitoring.gmp.enabled Google Managed Prometheus's collectors (namespace gmp-system) as well,
unless that is the namespace networkPolicy.prometheus already names. */}}
{{- define "workplace.scrapers" -}}
{{- $np := .Values.networkPolicy -}}
- namespaceSelector:
    {{- toYaml $np.prometheus.namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml $np.prometheus.podSelector | nindent 4 }}
{{- $named := (($np.prometheus.namespaceSelector | default dict).matchLabels | default dict) -}}
{{- if and .Values.monitoring.gmp.enabled (ne (index $named "kubernetes.io/metadata.name" | default "") "gmp-system") }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: gmp-system
{{- end }}
{{- end -}}
