{{/*
The gateway's Envoy config: deploy/envoy/envoy.yaml itself (files/envoy.yaml is a link to
it, so the routes, timeouts and headers are the local ones by construction), with
  - the gateway listener on 0.0.0.0:<gateway.ports.http>,
  - every cluster "<service>_<http|grpc>" pointed at that service's cluster DNS name and its
    port from the service registry (files/services.yaml),
  - a second listener on <gateway.ports.metrics> for the kubelet and Prometheus: /ready
    (health_check filter, 503 while draining) and /stats/prometheus (proxied to the admin
    interface, which stays on 127.0.0.1).
*/}}
{{- define "workplace.envoyConfig" -}}
{{- $root := . -}}
{{- $registry := include "workplace.registry" . | fromYaml -}}
{{- $source := .Files.Get "files/envoy.yaml" -}}
{{- if not $source -}}
{{- fail "files/envoy.yaml is missing: it must link to deploy/envoy/envoy.yaml" -}}
{{- end -}}
{{- $cfg := $source | fromYaml -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "files/envoy.yaml does not parse: %s" $cfg.Error) -}}
{{- end -}}
{{- $listeners := $cfg.static_resources.listeners -}}
{{- if ne (len $listeners) 1 -}}
{{- fail "deploy/envoy/envoy.yaml should have exactly one listener (the gateway)" -}}
{{- end -}}
{{- $listen := (index $listeners 0).address.socket_address -}}
{{- $_ := set $listen "address" "0.0.0.0" -}}
{{- $_ := set $listen "port_value" (int .Values.gateway.ports.http) -}}
{{- range $cluster := $cfg.static_resources.clusters -}}
{{- $parts := splitList "_" $cluster.name -}}
{{- $service := initial $parts | join "_" -}}
{{- $portName := last $parts -}}
{{- $entry := index $registry $service | default dict -}}
{{- $port := index ($entry.ports | default dict) $portName -}}
{{- if not $port -}}
{{- fail (printf "envoy cluster %s: files/services.yaml has no %s port for a service %q (run `task generate`: envoy.yaml and services.yaml come from the same registry)" $cluster.name $portName $service) -}}
{{- end -}}
{{- $endpoints := $cluster.load_assignment.endpoints -}}
{{- $socket := (index (index $endpoints 0).lb_endpoints 0).endpoint.address.socket_address -}}
{{- $_ := set $socket "address" (include "workplace.serviceHost" (dict "root" $root "component" $service)) -}}
{{- $_ := set $socket "port_value" (int $port) -}}
{{- /* The Services are headless, so each ready pod is a host of the cluster. A pod that cannot be
reached (refused or reset connections, timeouts: "local origin" errors) is ejected for a while;
a 5xx answer is not counted (a 503 for a database outage is the same on every pod: ejecting
would only shrink capacity). */ -}}
{{- $_ := set $cluster "outlier_detection" (dict
  "split_external_local_origin_errors" true
  "consecutive_local_origin_failure" 5
  "enforcing_consecutive_local_origin_failure" 100
  "enforcing_consecutive_5xx" 0
  "enforcing_consecutive_gateway_failure" 0
  "enforcing_success_rate" 0
  "interval" "10s"
  "base_ejection_time" "30s"
  "max_ejection_percent" 50) -}}
{{- end -}}
{{- /* An access log line per request on stdout, in Cloud Logging's structured format (httpRequest,
and the trace header so a line joins its trace). */ -}}
{{- $manager := (index (index (index $listeners 0).filter_chains 0).filters 0).typed_config -}}
{{- $_ := set $manager "access_log" (list (dict
  "name" "envoy.access_loggers.stdout"
  "typed_config" (dict
    "@type" "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
    "log_format" (dict "json_format" (dict
      "severity" "INFO"
      "message" "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%"
      "httpRequest" (dict
        "requestMethod" "%REQ(:METHOD)%"
        "requestUrl" "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
        "status" "%RESPONSE_CODE%"
        "responseSize" "%BYTES_SENT%"
        "userAgent" "%REQ(USER-AGENT)%"
        "remoteIp" "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
        "latency" "%DURATION%ms"
        "protocol" "%PROTOCOL%")
      "upstream" "%UPSTREAM_CLUSTER%"
      "responseFlags" "%RESPONSE_FLAGS%"
      "traceparent" "%REQ(TRACEPARENT)%"))))) -}}
{{- $health := dict
  "name" "health"
  "address" (dict "socket_address" (dict "address" "0.0.0.0" "port_value" (int .Values.gateway.ports.metrics)))
  "filter_chains" (list (dict "filters" (list (dict
    "name" "envoy.filters.network.http_connection_manager"
    "typed_config" (dict
      "@type" "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
      "stat_prefix" "health"
      "route_config" (dict "name" "health" "virtual_hosts" (list (dict
        "name" "health"
        "domains" (list "*")
        "routes" (list (dict
          "match" (dict "path" "/stats/prometheus")
          "route" (dict "cluster" "envoy_admin"))))))
      "http_filters" (list
        (dict
          "name" "envoy.filters.http.health_check"
          "typed_config" (dict
            "@type" "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck"
            "pass_through_mode" false
            "headers" (list (dict "name" ":path" "string_match" (dict "exact" "/ready")))))
        (dict
          "name" "envoy.filters.http.router"
          "typed_config" (dict "@type" "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")))))))) -}}
{{- $admin := dict
  "name" "envoy_admin"
  "type" "STATIC"
  "connect_timeout" "1s"
  "load_assignment" (dict
    "cluster_name" "envoy_admin"
    "endpoints" (list (dict "lb_endpoints" (list (dict "endpoint" (dict "address" (dict "socket_address" (dict
      "address" $cfg.admin.address.socket_address.address
      "port_value" (int $cfg.admin.address.socket_address.port_value))))))))) -}}
{{- $_ := set $cfg.static_resources "listeners" (append $listeners $health) -}}
{{- $_ := set $cfg.static_resources "clusters" (append $cfg.static_resources.clusters $admin) -}}
{{- toYaml $cfg -}}
{{- end -}}
