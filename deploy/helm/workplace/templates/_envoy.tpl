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
{{- /* The token check accepts the issuer and audience the services accept (values auth.tokens). */ -}}
{{- $jwt := dict -}}
{{- range $filter := (index (index (index $listeners 0).filter_chains 0).filters 0).typed_config.http_filters -}}
{{- if eq $filter.name "envoy.filters.http.jwt_authn" -}}
{{- $jwt = $filter -}}
{{- end -}}
{{- end -}}
{{- if not $jwt -}}
{{- fail "deploy/envoy/envoy.yaml has no jwt_authn filter (the token check)" -}}
{{- end -}}
{{- with .Values.auth.tokens.issuer -}}
{{- $_ := set $jwt.typed_config.providers.workplace "issuer" . -}}
{{- end -}}
{{- with .Values.auth.tokens.audience -}}
{{- $_ := set $jwt.typed_config.providers.workplace "audiences" (list .) -}}
{{- end -}}
{{- /* Behind the public edge, Google's load balancer appends two addresses to X-Forwarded-For
(the client it saw, then its own): trusting those two hops makes Envoy's client address, and
the x-envoy-external-address the services limit by, the learner's and not a front end's. */ -}}
{{- if .Values.edge.enabled -}}
{{- $_ := set (index (index (index $listeners 0).filter_chains 0).filters 0).typed_config "xff_num_trusted_hops" 2 -}}
{{- end -}}
{{- $legacy := .Values.gateway.canary.legacy -}}
{{- range $cluster := $cfg.static_resources.clusters -}}
{{- $endpoints := $cluster.load_assignment.endpoints -}}
{{- $socket := (index (index $endpoints 0).lb_endpoints 0).endpoint.address.socket_address -}}
{{- if eq $cluster.name "legacy" -}}
{{- /* The legacy app (the canary's other side). Without one, the weights stay 100 % new
(workplace.envoyRuntime refuses less) and this cluster is never chosen: the discard port. */ -}}
{{- $_ := set $socket "address" ($legacy.host | default "127.0.0.1") -}}
{{- $_ := set $socket "port_value" (int (ternary $legacy.port 9 (ne $legacy.host ""))) -}}
{{- else -}}
{{- $parts := splitList "_" $cluster.name -}}
{{- $service := initial $parts | join "_" -}}
{{- $portName := last $parts -}}
{{- $entry := index $registry $service | default dict -}}
{{- $port := index ($entry.ports | default dict) $portName -}}
{{- if not $port -}}
{{- fail (printf "envoy cluster %s: files/services.yaml has no %s port for a service %q (run `task generate`: envoy.yaml and services.yaml come from the same registry)" $cluster.name $portName $service) -}}
{{- end -}}
{{- $_ := set $socket "address" (include "workplace.serviceHost" (dict "root" $root "component" $service)) -}}
{{- $_ := set $socket "port_value" (int $port) -}}
{{- end -}}
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
{{- /* Run-time keys (the canary's weights): the runtime ConfigMap as a disk layer, which Envoy
reloads when the kubelet swaps the mounted ..data link, and the admin layer on top, which
`task canary -- N --kube` sets in each running pod for an immediate change. */ -}}
{{- $_ := set $cfg "layered_runtime" (dict "layers" (list
  (dict "name" "static" "static_layer" dict)
  (dict "name" "disk" "disk_layer" (dict "symlink_root" (printf "%s/..data" (include "workplace.envoyRuntimeDir" .))))
  (dict "name" "admin" "admin_layer" dict))) -}}
{{- $_ := set $cfg.static_resources "listeners" (append $listeners $health) -}}
{{- $_ := set $cfg.static_resources "clusters" (append $cfg.static_resources.clusters $admin) -}}
{{- /* With the OpenTelemetry Collector: a tracer and its otel_collector cluster (_telemetry.tpl). */ -}}
{{- include "workplace.envoyTracing" (dict "root" . "cfg" $cfg) -}}
{{- toYaml $cfg -}}
{{- end -}}


{{/* Where the gateway pod mounts its runtime ConfigMap (outside /etc/envoy, itself a mount). */}}
{{- define "workplace.envoyRuntimeDir" -}}/etc/envoy-runtime{{- end -}}

{{/*
The gateway's run-time keys, read from the routes of the config gateway.yaml rendered (called
with dict "root" . "config" <workplace.envoyConfig>; workplace_kit.canary names the keys,
scripts/generate.py writes them into envoy.yaml): for gateway.canary.newPercent each split
route's runtime_key_prefix + "." + cluster gets the new share or the legacy app's, and the
legacy app's own routes (runtime_fraction) are on while it takes any share.
*/}}
{{- define "workplace.envoyRuntime" -}}
{{- $cfg := .config | fromYaml -}}
{{- $canary := .root.Values.gateway.canary -}}
{{- $new := int $canary.newPercent -}}
{{- if and (lt $new 100) (not $canary.legacy.host) -}}
{{- fail (printf "gateway.canary.newPercent is %d but gateway.canary.legacy.host is empty: set the legacy app's address, or keep 100" $new) -}}
{{- end -}}
{{- $values := dict -}}
{{- $manager := (index (index (index $cfg.static_resources.listeners 0).filter_chains 0).filters 0).typed_config -}}
{{- range $host := $manager.route_config.virtual_hosts -}}
{{- range $route := $host.routes -}}
{{- $target := $route.route | default dict -}}
{{- if $target.weighted_clusters -}}
{{- $split := $target.weighted_clusters -}}
{{- range $c := $split.clusters -}}
{{- $_ := set $values (printf "%s.%s" $split.runtime_key_prefix $c.name) (toString (ternary (sub 100 $new) $new (eq $c.name "legacy"))) -}}
{{- end -}}
{{- else if and (eq ($target.cluster | default "") "legacy") $route.match.runtime_fraction -}}
{{- $_ := set $values $route.match.runtime_fraction.runtime_key (ternary "100" "0" (lt $new 100)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* The per-address limits at the gateway (scripts/generate.py CLIENT_RATE), off locally. */ -}}
{{- $_ := set $values "gateway.rate_limit.enabled" (ternary "100" "0" .root.Values.gateway.rateLimit.enabled) -}}
{{- toYaml $values -}}
{{- end -}}
