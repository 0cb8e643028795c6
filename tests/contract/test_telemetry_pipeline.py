"""Traces from the services and the gateway to Cloud Trace, through the chart's OpenTelemetry
Collector (deploy/helm/workplace/templates/otel-collector.yaml, _telemetry.tpl). No cluster
needed: the chart is rendered offline (as in test_deploy_manifests.py) and checked against

- the collector's own configuration rules, as far as they can be checked without the collector:
  every component a pipeline names is defined, memory_limiter comes first and batch last, the
  ports it listens on are the ones its pod, Service, probes, NetworkPolicy and PodMonitoring use;
- the services' settings (WP_OTLP_ENDPOINT, WP_TRACE_SAMPLE_RATIO, WP_GCP_PROJECT as the kit
  reads them) and the collector Service they point at;
- Envoy itself: the production gateway config passes `envoy --mode validate`, and a real Envoy
  on it exports a span over OTLP/gRPC to a stand-in collector, for a request it starts a trace
  for and for one whose caller's traceparent it continues, and passes the context upstream.

The collector binary itself is not run here (no package registry here carries the contrib
distribution with the googlecloud exporter): the exporter's and processors' option names follow
their READMEs (see docs/production.md, "Traces and logs").
"""

from __future__ import annotations

import copy
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from helm_python.errors import HelmRenderError, HelmValuesError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from support.envoy import gateway_manager, running_envoy, validate
from support.services import free_port
from test_deploy_manifests import _documents
from test_deploy_manifests import _render as _render_chart
from workplace_kit.config import ServiceSettings, load_settings

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "workplace"
PRODUCTION_VALUES = CHART_DIR / "values-production.yaml"
RELEASE = "workplace"
NAMESPACE = "workplace"
COLLECTOR = f"{RELEASE}-otel-collector"
COLLECTOR_HOST = f"{COLLECTOR}.{NAMESPACE}.svc.cluster.local"
# Known component types of the OpenTelemetry Collector contrib distribution that this config may
# use (a typo such as "googlecloudexporter" or "memorylimiter" is not a component).
KNOWN = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "resourcedetection"},
    "exporters": {"googlecloud", "debug"},
    "extensions": {"health_check"},
}


# --------------------------------------------------------------------------- rendering


def _production_values() -> dict:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def _render(values: dict) -> list[dict]:
    return _documents(_render_chart(values))


def _kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _merged(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return _render(_production_values())


@pytest.fixture(scope="module")
def default() -> list[dict]:
    return _render({})


def _env(deployment: dict) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "<from a secret>") for e in container.get("env", [])}


def _python_workloads(docs: list[dict]) -> dict[str, dict]:
    return {
        name: d
        for name, d in _kind(docs, "Deployment").items()
        if d["spec"]["template"]["spec"]["containers"][0].get("command", [None])[0] == "python"
    }


def _collector_config(docs: list[dict]) -> dict:
    return yaml.safe_load(_kind(docs, "ConfigMap")[COLLECTOR]["data"]["collector.yaml"])


def _envoy_config(docs: list[dict]) -> dict:
    return yaml.safe_load(_kind(docs, "ConfigMap")[f"{RELEASE}-gateway"]["data"]["envoy.yaml"])


_manager = gateway_manager


# --------------------------------------------------------------------------- the collector's config


def collector_config_problems(config: dict) -> list[str]:
    """What the collector would refuse, or what would make it drop data, in its config."""
    problems = []
    for section, known in KNOWN.items():
        for name in config.get(section) or {}:
            if name.split("/")[0] not in known:
                problems.append(f"{section}: unknown component type {name!r}")
    service = config.get("service") or {}
    for name in service.get("extensions", []):
        if name not in (config.get("extensions") or {}):
            problems.append(f"service.extensions: {name!r} is not defined")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines: none")
    for pipeline, spec in pipelines.items():
        for section in ("receivers", "processors", "exporters"):
            for name in spec.get(section, []):
                if name not in (config.get(section) or {}):
                    problems.append(f"pipeline {pipeline}: {section[:-1]} {name!r} is not defined")
        if not spec.get("receivers") or not spec.get("exporters"):
            problems.append(f"pipeline {pipeline}: needs a receiver and an exporter")
        processors = spec.get("processors", [])
        if not processors or processors[0] != "memory_limiter":
            problems.append(f"pipeline {pipeline}: memory_limiter must be the first processor")
        if not processors or processors[-1] != "batch":
            problems.append(f"pipeline {pipeline}: batch must be the last processor")
    return problems


def _port(endpoint: str) -> int:
    host, _, port = endpoint.rpartition(":")
    assert host == "0.0.0.0", f"{endpoint}: the collector must listen on the pod's address, not localhost"
    return int(port)


def test_collector_config_pipelines_are_complete_and_ordered(production) -> None:
    config = _collector_config(production)
    assert collector_config_problems(config) == []
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and traces["exporters"] == ["googlecloud"]
    assert "resourcedetection" in traces["processors"]
    assert "gcp" in config["processors"]["resourcedetection"]["detectors"]
    limiter = config["processors"]["memory_limiter"]
    assert limiter["check_interval"] and 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 90
    # Cloud Trace in the production project, the one the log lines name (WP_GCP_PROJECT).
    assert config["exporters"]["googlecloud"]["project"] == "workplace-prod"
    for name, deployment in _python_workloads(production).items():
        assert _env(deployment)["WP_GCP_PROJECT"] == "workplace-prod", name


def test_collector_config_check_can_fail() -> None:
    good = {
        "receivers": {"otlp": {}},
        "processors": {"memory_limiter": {}, "batch": {}},
        "exporters": {"googlecloud": {}},
        "extensions": {"health_check": {}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["googlecloud"],
                }
            },
        },
    }
    assert collector_config_problems(good) == []
    swapped = copy.deepcopy(good)
    swapped["service"]["pipelines"]["traces"]["processors"] = ["batch", "memory_limiter"]
    assert len(collector_config_problems(swapped)) == 2
    undefined = copy.deepcopy(good)
    undefined["service"]["pipelines"]["traces"]["exporters"] = ["otlp/elsewhere"]
    assert collector_config_problems(undefined) == ["pipeline traces: exporter 'otlp/elsewhere' is not defined"]
    typo = copy.deepcopy(good)
    typo["exporters"] = {"googlecloudexporter": {}}
    assert "exporters: unknown component type 'googlecloudexporter'" in collector_config_problems(typo)


def test_collector_listens_where_its_pod_service_probes_and_scrapes_point(production) -> None:
    config = _collector_config(production)
    deployment = _kind(production, "Deployment")[COLLECTOR]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    protocols = config["receivers"]["otlp"]["protocols"]
    assert _port(protocols["grpc"]["endpoint"]) == ports["otlp-grpc"] == 4317
    assert _port(protocols["http"]["endpoint"]) == ports["otlp-http"] == 4318
    assert _port(config["extensions"]["health_check"]["endpoint"]) == ports["health"] == 13133
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader["port"] == ports["metrics"] and reader["host"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "health"}, probe
    # The config file it is started with is the ConfigMap's key.
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert container["args"] == [f"--config={mount['mountPath']}/collector.yaml"]
    assert next(v for v in pod["volumes"] if v["name"] == "config")["configMap"]["name"] == COLLECTOR
    service = _kind(production, "Service")[COLLECTOR]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "otlp-grpc": (4317, "otlp-grpc"),
        "otlp-http": (4318, "otlp-http"),
    }
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    monitor = _kind(production, "PodMonitoring")[COLLECTOR]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_collector_is_hardened_pinned_and_has_its_own_identity(production) -> None:
    values = _production_values()["otelCollector"]
    deployment = _kind(production, "Deployment")[COLLECTOR]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    image = container["image"]
    assert "/otel/opentelemetry-collector-contrib:" in image
    tag = image.rsplit(":", 1)[1]
    assert tag[0].isdigit() and tag.count(".") == 2, f"the collector's image must be a pinned version: {image}"
    assert deployment["spec"]["replicas"] >= 2 and _kind(production, "PodDisruptionBudget")[COLLECTOR]
    # Its own Kubernetes and Google service accounts: the only holder of roles/cloudtrace.agent.
    assert pod["serviceAccountName"] == COLLECTOR and pod["automountServiceAccountToken"] is False
    account = _kind(production, "ServiceAccount")[COLLECTOR]
    identity = values["serviceAccount"]["gcpServiceAccount"]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == identity
    others = {
        a["metadata"].get("annotations", {}).get("iam.gke.io/gcp-service-account")
        for name, a in _kind(production, "ServiceAccount").items()
        if name != COLLECTOR
    }
    assert identity not in others
    # A digest is honoured (the chart's image helper), the tag kept for people.
    digest = "sha256:" + "ab" * 32
    pinned = _render(_merged(_production_values(), {"otelCollector": {"image": {"digest": digest}}}))
    assert _kind(pinned, "Deployment")[COLLECTOR]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        f":{tag}@{digest}"
    )


def test_collector_is_off_by_default(default) -> None:
    assert not [d for d in default if d["metadata"]["name"] == COLLECTOR]
    for name, deployment in _python_workloads(default).items():
        env = _env(deployment)
        assert "WP_OTLP_ENDPOINT" not in env and "WP_TRACE_SAMPLE_RATIO" not in env, name
    config = _envoy_config(default)
    assert "tracing" not in _manager(config)
    assert "otel_collector" not in {c["name"] for c in config["static_resources"]["clusters"]}


# --------------------------------------------------------------------------- the services


def test_every_service_sends_its_spans_to_the_collector_service(production, monkeypatch) -> None:
    service = _kind(production, "Service")[COLLECTOR]
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "otlp-grpc")
    ratio = _production_values()["otelCollector"]["sampleRatio"]
    workloads = _python_workloads(production)
    assert {f"{RELEASE}-chat", f"{RELEASE}-feedback-worker", f"{RELEASE}-web"} <= set(workloads)
    for name, deployment in workloads.items():
        env = _env(deployment)
        with monkeypatch.context() as patch:
            for var in ("WP_OTLP_ENDPOINT", "WP_TRACE_SAMPLE_RATIO", "WP_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"):
                patch.delenv(var, raising=False)
            for var in ("WP_OTLP_ENDPOINT", "WP_TRACE_SAMPLE_RATIO", "WP_GCP_PROJECT"):
                patch.setenv(var, env[var])
            settings = load_settings(ServiceSettings)
        assert settings.otlp_endpoint == f"http://{COLLECTOR_HOST}:{grpc_port}", name
        assert settings.trace_sample_ratio == ratio, name
        assert settings.gcp_project == "workplace-prod", name


def test_an_endpoint_of_your_own_or_the_collector_not_both() -> None:
    own = _render({"global": {"otlpEndpoint": "http://collector.observability:4317"}})
    assert (
        _env(_kind(own, "Deployment")[f"{RELEASE}-chat"])["WP_OTLP_ENDPOINT"] == "http://collector.observability:4317"
    )
    with pytest.raises(HelmRenderError, match="otlpEndpoint"):
        _render({"global": {"otlpEndpoint": "http://collector.observability:4317"}, "otelCollector": {"enabled": True}})
    with pytest.raises(HelmValuesError, match="sampleRatio"):
        _render({"otelCollector": {"sampleRatio": 1.5}})
    with pytest.raises(HelmValuesError, match="gcpServiceAccount"):
        _render({"otelCollector": {"serviceAccount": {"gcpServiceAccount": "trace-writer"}}})


# --------------------------------------------------------------------------- network policies


def _peers_for(policy: dict, port: str) -> list[dict]:
    return [
        peer
        for rule in policy["spec"]["ingress"]
        if port in {p["port"] for p in rule["ports"]}
        for peer in rule["from"]
    ]


def test_the_release_reaches_the_collector_and_gmp_scrapes_it(production) -> None:
    policy = _kind(production, "NetworkPolicy")[COLLECTOR]
    release = {"app.kubernetes.io/name": "workplace", "app.kubernetes.io/instance": RELEASE}
    for port in ("otlp-grpc", "otlp-http"):
        assert [p.get("podSelector", {}).get("matchLabels") for p in _peers_for(policy, port)] == [release], port
    # Every Python workload and the gateway carry those labels.
    for name, deployment in _kind(production, "Deployment").items():
        assert release.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), name
    scrapers = _peers_for(policy, "metrics")
    assert [p["namespaceSelector"]["matchLabels"] for p in scrapers] == [{"kubernetes.io/metadata.name": "gmp-system"}]


def test_with_gmp_its_collectors_may_scrape_whatever_networkpolicy_prometheus_says() -> None:
    """networkPolicy.prometheus names an in-cluster Prometheus (the default values); turning on
    Google Managed Prometheus admits gmp-system on every metrics port as well."""
    docs = _render({"monitoring": {"gmp": {"enabled": True}}, "otelCollector": {"enabled": True}})
    policies = {n: p for n, p in _kind(docs, "NetworkPolicy").items() if not n.endswith("default-deny-ingress")}
    assert f"{RELEASE}-gateway" in policies and COLLECTOR in policies and f"{RELEASE}-chat" in policies
    for name, policy in policies.items():
        namespaces = {
            peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
            for rule in policy["spec"]["ingress"]
            for peer in rule.get("from", [])
            if "namespaceSelector" in peer
        }
        assert {"monitoring", "gmp-system"} <= namespaces, name
    without = _render({})
    for name, policy in _kind(without, "NetworkPolicy").items():
        assert "gmp-system" not in str(policy), name


# --------------------------------------------------------------------------- the gateway's tracer


def test_gateway_traces_to_the_collector(production) -> None:
    config = _envoy_config(production)
    tracing = _manager(config)["tracing"]
    assert tracing["random_sampling"]["value"] == pytest.approx(
        _production_values()["otelCollector"]["sampleRatio"] * 100
    )
    provider = tracing["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    typed = provider["typed_config"]
    assert typed["@type"] == "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
    assert typed["service_name"] == "gateway"
    cluster_name = typed["grpc_service"]["envoy_grpc"]["cluster_name"]
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == cluster_name)
    assert cluster_name == "otel_collector" and cluster["type"] == "STRICT_DNS"
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"], "OTLP/gRPC needs HTTP/2"
    socket_address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ]
    # The access log line names the request's trace (Cloud Logging's field), sampled or not.
    (access_log,) = _manager(config)["access_log"]
    fields = access_log["typed_config"]["log_format"]["json_format"]
    assert fields["logging.googleapis.com/trace"] == "projects/workplace-prod/traces/%TRACE_ID%"
    service = _kind(production, "Service")[COLLECTOR]
    assert socket_address == {
        "address": COLLECTOR_HOST,
        "port_value": next(p["port"] for p in service["spec"]["ports"] if p["name"] == "otlp-grpc"),
    }


def test_production_gateway_config_with_the_tracer_passes_envoy_validate(production, tmp_path: Path) -> None:
    config = _envoy_config(production)
    assert "tracing" in _manager(config)
    result = validate(config, tmp_path)
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
    # Envoy's validation is real: a field the tracer does not have is refused.
    _manager(config)["tracing"]["provider"]["typed_config"]["collector_address"] = "otel-collector:4317"
    assert validate(config, tmp_path).returncode != 0


# --------------------------------------------------------------------------- a real Envoy, a stand-in collector


class StandInCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[str, object]]:
        """(service.name of the resource, span) of everything received."""
        found = []
        for request in list(self.requests):
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    found.extend((attributes.get("service.name", ""), span) for span in scope.spans)
        return found


class _Upstream(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - the handler's name
        type(self).seen.append({":path": self.path} | {k.lower(): v for k, v in self.headers.items()})
        body = b"ok"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def stand_ins() -> Iterator[tuple[int, StandInCollector, int]]:
    """A stand-in collector (OTLP/gRPC) and a stand-in service (HTTP) on free ports."""
    collector = StandInCollector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    collector_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    _Upstream.seen = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector_port, collector, upstream.server_address[1]
    finally:
        upstream.shutdown()
        server.stop(grace=None)


def _wait_for(condition, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    return None


def test_a_real_gateway_exports_its_spans_and_passes_the_context_on(stand_ins, tmp_path: Path) -> None:
    """Production's gateway config (every request sampled here), its otel_collector cluster and
    the service clusters pointed at local stand-ins: a request without a trace gets one started at
    the gateway; a caller's traceparent is continued; the service gets the context either way."""
    collector_port, collector, upstream_port = stand_ins
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    values = _merged(
        _production_values(),
        {"gateway": {"ports": {"http": http_port, "metrics": metrics_port}}, "otelCollector": {"sampleRatio": 1.0}},
    )
    config = _envoy_config(_render(values))
    assert _manager(config)["tracing"]["random_sampling"]["value"] == 100
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    for cluster in config["static_resources"]["clusters"]:
        for endpoints in cluster["load_assignment"]["endpoints"]:
            for endpoint in endpoints["lb_endpoints"]:
                socket_address = endpoint["endpoint"]["address"]["socket_address"]
                socket_address["address"] = "127.0.0.1"
                socket_address["port_value"] = {"otel_collector": collector_port, "envoy_admin": admin_port}.get(
                    cluster["name"], upstream_port
                )
    with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{metrics_port}/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=10) as response:
            assert response.status == 200
        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/", headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        spans = _wait_for(lambda: len(collector.spans()) >= 2 and collector.spans())
    assert spans, f"the stand-in collector received no span (envoy log: {(tmp_path / 'envoy.log').read_text()[-2000:]})"
    assert {service for service, _ in spans} == {"gateway"}
    by_trace = {span.trace_id.hex(): span for _, span in spans}
    continued = by_trace.get(caller_trace)
    assert continued is not None, f"the caller's trace was not continued: {sorted(by_trace)}"
    assert continued.parent_span_id.hex() == caller_span
    started = [span for trace_id, span in by_trace.items() if trace_id != caller_trace]
    assert started and not started[0].parent_span_id, "a request without a trace starts one at the gateway"
    # The service behind the gateway is handed each trace's context (W3C traceparent).
    passed = [headers.get("traceparent", "") for headers in _Upstream.seen if headers[":path"] == "/"]
    assert len(passed) == 2 and all(passed), passed
    assert {value.split("-")[1] for value in passed} == set(by_trace)
    # Each request's access log line names its trace in Cloud Logging's field.
    lines = [line for line in (tmp_path / "envoy.log").read_text().splitlines() if line.startswith("{")]
    logged = {json.loads(line).get("logging.googleapis.com/trace") for line in lines}
    assert {f"projects/workplace-prod/traces/{trace_id}" for trace_id in by_trace} <= logged, logged
