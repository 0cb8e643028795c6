"""Contract tests for the public edge (values `edge`): GKE's Gateway API in front of the Envoy gateway.

The chart is rendered offline as in test_deploy_manifests.py. The Gateway, HTTPRoutes and GKE's
policies (HealthCheckPolicy, GCPBackendPolicy, GCPGatewayPolicy) are checked against the CRDs
their owners publish (tests/contract/data/gateway-api and data/gke-gateway, see the READMEs
there): their openAPIV3Schema, the fields the API server would silently prune, and the CEL rules
(x-kubernetes-validations) that apply to these objects, mirrored here because no CEL evaluator is
a dependency. What they point at is checked against the rest of the render: the Envoy Service and
port, the health listener Envoy really serves, its stream timeouts and the drain sidecar's
seconds. A real Envoy on the rendered config then answers HTTP/2 cleartext (a gRPC call, as the
load balancer forwards it) and the load balancer's HTTP/1.1 health check.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.request
from pathlib import Path

import grpc
import jsonschema
import pytest
import yaml
from helm_python.errors import HelmRenderError, HelmValuesError
from support.envoy import on_local_ports, running_envoy
from support.services import free_port
from test_deploy_manifests import (
    RELEASE,
    _container,
    _documents,
    _kind,
    _pods_selected,
    _production_values,
    _render,
    _rendered_envoy_config,
)

DATA = Path(__file__).parent / "data"
CRD_FILES = [
    *sorted((DATA / "gateway-api").glob("*.yaml")),
    *sorted((DATA / "gke-gateway").glob("*.yaml")),
]
EDGE_GROUPS = ("gateway.networking.k8s.io", "networking.gke.io")
GKE_GLOBAL_CLASS = "gke-l7-global-external-managed"
CERTMAP_ANNOTATION = "networking.gke.io/certmap"
# Google's front ends and health checkers (Cloud Load Balancing documentation, firewall rules for
# the global external Application Load Balancer), fixed here rather than read from values.
GOOGLE_LB_RANGES = [ipaddress.ip_network("35.191.0.0/16"), ipaddress.ip_network("130.211.0.0/22")]
# The global external Application Load Balancer keeps idle connections to backends for 600 s
# (documented, not configurable): Envoy must not close them first, or requests meet a 502.
LB_BACKEND_KEEPALIVE_S = 600
GATEWAY = f"{RELEASE}-gateway"
EDGE_VALUES = {
    "enabled": True,
    "hostnames": ["roleplay.example.test"],
    "staticAddressName": "edge-ip",
    "certificateMap": "edge-certs",
    "securityPolicy": "edge-armor",
}


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict]]:
    return {
        "production": _documents(_render(_production_values())),
        "default": _documents(_render({})),
        "default-edge": _documents(_render({"edge": EDGE_VALUES})),
    }


def _edge_objects(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["apiVersion"].split("/")[0] in EDGE_GROUPS]


def _only(docs: list[dict], kind: str) -> dict:
    found = list(_kind(docs, kind).values())
    assert len(found) == 1, f"{len(found)} {kind}s rendered"
    return found[0]


def _envoy_service(docs: list[dict]) -> dict:
    """The Service whose pods run the envoy container, found from the render, not by name."""
    found = [
        service
        for service in _kind(docs, "Service").values()
        if any(
            c["name"] == "envoy"
            for d in _pods_selected(docs, service["spec"]["selector"])
            for c in d["spec"]["template"]["spec"]["containers"]
        )
    ]
    assert len(found) == 1, [s["metadata"]["name"] for s in found]
    return found[0]


def _envoy_deployment(docs: list[dict]) -> dict:
    (deployment,) = _pods_selected(docs, _envoy_service(docs)["spec"]["selector"])
    return deployment


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", duration)
    assert match, f"not a duration in seconds: {duration}"
    return float(match.group(1))


def _gateway_manager(config: dict) -> dict:
    """The HTTP connection manager of Envoy's gateway listener (the one that is not `health`)."""
    (listener,) = [item for item in config["static_resources"]["listeners"] if item["name"] != "health"]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _readiness_endpoint(config: dict) -> tuple[int, str]:
    """Port and path that Envoy's health_check filter answers (503 while draining)."""
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] != "envoy.filters.http.health_check":
                        continue
                    (path,) = [
                        h["string_match"]["exact"]
                        for h in http_filter["typed_config"]["headers"]
                        if h["name"] == ":path"
                    ]
                    return listener["address"]["socket_address"]["port_value"], path
    raise AssertionError("no health_check filter in the rendered Envoy config")


# --------------------------------------------------------------------------- the CRDs


def _crds() -> dict[tuple[str, str], dict]:
    crds = {}
    for path in CRD_FILES:
        crd = yaml.safe_load(path.read_text())
        crds[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return crds


CRDS = _crds()


def _schema(obj: dict) -> dict:
    group, version = obj["apiVersion"].split("/")
    crd = CRDS.get((group, obj["kind"]))
    assert crd, f"no CRD for {obj['apiVersion']} {obj['kind']} in tests/contract/data"
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert served["served"], f"{obj['apiVersion']} {obj['kind']} is not served"
    return served["schema"]["openAPIV3Schema"]


def _pruned(schema: dict, value, path: str = "") -> list[str]:
    """Fields the API server would drop without a word: not in the (structural) schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            for key, item in value.items():
                if key in properties:
                    found += _pruned(properties[key], item, f"{path}.{key}")
                else:
                    found.append(f"{path}.{key}")
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, item in value.items():
                found += _pruned(schema["additionalProperties"], item, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += _pruned(schema["items"], item, f"{path}[{index}]")
    return found


def _schema_errors(obj: dict) -> list[str]:
    schema = _schema(obj)
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    return errors + [f"{field}: unknown field, pruned" for field in _pruned(schema, obj)]


def _cel_messages(crd: dict) -> set[str]:
    messages = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            messages.update(" ".join(r["message"].split()) for r in node.get("x-kubernetes-validations", []))
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(crd["spec"]["versions"])
    return messages


def _parent_key(ref: dict) -> tuple:
    return ref.get("group", "gateway.networking.k8s.io"), ref.get("kind", "Gateway"), ref["name"], ref.get("namespace")


def _same_parent(a: dict, b: dict) -> bool:
    return _parent_key(a) == _parent_key(b)


def _check(spec: dict) -> dict:
    config = spec["default"]["config"]
    return config[{"HTTP": "httpHealthCheck", "HTTPS": "httpsHealthCheck", "HTTP2": "http2HealthCheck"}[config["type"]]]


# Kind -> (the CRD rule's message, the same rule in Python over the whole object). The message
# must be in the CRD, so a rule renamed or dropped upstream shows here.
CEL_RULES = {
    "Gateway": [
        (
            "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
            lambda o: all("tls" not in x for x in o["spec"]["listeners"] if x["protocol"] in ("HTTP", "TCP", "UDP")),
        ),
        (
            "Listener name must be unique within the Gateway",
            lambda o: len({x["name"] for x in o["spec"]["listeners"]}) == len(o["spec"]["listeners"]),
        ),
        (
            "Combination of port, protocol and hostname must be unique for each listener",
            lambda o: (
                len({(x["port"], x["protocol"], x.get("hostname")) for x in o["spec"]["listeners"]})
                == len(o["spec"]["listeners"])
            ),
        ),
        (
            "certificateRefs or options must be specified when mode is Terminate",
            lambda o: all(
                x["tls"].get("certificateRefs") or x["tls"].get("options")
                for x in o["spec"]["listeners"]
                if "tls" in x and x["tls"].get("mode", "Terminate") == "Terminate"
            ),
        ),
    ],
    "HTTPRoute": [
        (
            "RequestRedirect filter must not be used together with backendRefs",
            lambda o: all(
                not r.get("backendRefs") or not any("requestRedirect" in f for f in r.get("filters", []))
                for r in o["spec"]["rules"]
            ),
        ),
        (
            "Must have port for Service reference",
            lambda o: all(
                "port" in b
                for r in o["spec"]["rules"]
                for b in r.get("backendRefs", [])
                if b.get("group", "") == "" and b.get("kind", "Service") == "Service"
            ),
        ),
        (
            "sectionName must be specified when parentRefs includes 2 or more references to the same parent",
            lambda o: all(
                "sectionName" in a and "sectionName" in b
                for i, a in enumerate(o["spec"]["parentRefs"])
                for b in o["spec"]["parentRefs"][i + 1 :]
                if _same_parent(a, b)
            ),
        ),
        (
            "filter.requestRedirect must be specified for RequestRedirect filter.type",
            lambda o: all(
                "requestRedirect" in f
                for r in o["spec"]["rules"]
                for f in r.get("filters", [])
                if f["type"] == "RequestRedirect"
            ),
        ),
    ],
    "HealthCheckPolicy": [
        (
            "for portSpecification being USE_FIXED_PORT, port must be set and portName must be unset",
            lambda o: (
                _check(o["spec"]).get("portSpecification") != "USE_FIXED_PORT"
                or ("port" in _check(o["spec"]) and "portName" not in _check(o["spec"]))
            ),
        ),
        (
            "port and portName must be unset for portSpecification being USE_SERVING_PORT (which is the default)",
            lambda o: (
                _check(o["spec"]).get("portSpecification", "USE_SERVING_PORT") != "USE_SERVING_PORT"
                or ("port" not in _check(o["spec"]) and "portName" not in _check(o["spec"]))
            ),
        ),
        (
            "httpHealthCheck must be specified for type HTTP",
            lambda o: (
                o["spec"]["default"]["config"]["type"] != "HTTP" or "httpHealthCheck" in o["spec"]["default"]["config"]
            ),
        ),
        (
            "timeOutSec cannot exceed checkIntervalSec",
            lambda o: o["spec"]["default"].get("timeoutSec", 5) <= o["spec"]["default"].get("checkIntervalSec", 5),
        ),
    ],
}


@pytest.mark.parametrize("value_set", ["production", "default-edge"])
def test_edge_objects_pass_their_published_crds(renders, value_set: str) -> None:
    objects = _edge_objects(renders[value_set])
    kinds = sorted(o["kind"] for o in objects)
    expected = ["GCPBackendPolicy", "Gateway", "HTTPRoute", "HTTPRoute", "HealthCheckPolicy"]
    if value_set == "production":
        expected = sorted([*expected, "GCPGatewayPolicy"])  # production names an SSL policy
    assert kinds == sorted(expected)
    for obj in objects:
        assert _schema_errors(obj) == [], f"{obj['kind']} {obj['metadata']['name']}"
        crd = CRDS[(obj["apiVersion"].split("/")[0], obj["kind"])]
        messages = _cel_messages(crd)
        for message, rule in CEL_RULES.get(obj["kind"], []):
            assert message in messages, f"{obj['kind']}: the CRD no longer has the rule {message!r}"
            assert rule(obj), f"{obj['kind']} {obj['metadata']['name']}: {message}"


def test_the_crd_checks_would_catch_mistakes(renders) -> None:
    docs = renders["production"]
    policy = _only(docs, "GCPBackendPolicy")
    # A wrong type, a value past the CRD's bounds, and a misspelt field the API server would drop.
    for broken_default, expected in (
        ({"timeoutSec": "3600"}, "is not of type 'integer'"),
        ({"logging": {"enabled": True, "sampleRate": 2_000_000}}, "is greater than the maximum"),
        ({"connectionDrainTimeoutSec": 50}, "unknown field, pruned"),
    ):
        broken = {**policy, "spec": {**policy["spec"], "default": {**policy["spec"]["default"], **broken_default}}}
        assert any(expected in e for e in _schema_errors(broken)), broken_default
    check = _only(docs, "HealthCheckPolicy")
    serving = yaml.safe_load(yaml.safe_dump(check))
    del _check(serving["spec"])["portSpecification"]
    rule = dict(CEL_RULES["HealthCheckPolicy"])[
        "port and portName must be unset for portSpecification being USE_SERVING_PORT (which is the default)"
    ]
    assert not rule(serving), "a fixed port without USE_FIXED_PORT is refused by the API server"
    gateway = _only(docs, "Gateway")
    unknown_class = {**gateway, "spec": {**gateway["spec"], "gatewayClass": GKE_GLOBAL_CLASS}}
    assert _schema_errors(unknown_class)


# --------------------------------------------------------------------------- Gateway and routes


def test_production_gateway_is_gkes_global_external_load_balancer_with_certmap_and_static_ip(renders) -> None:
    values = _production_values()["edge"]
    gateway = _only(renders["production"], "Gateway")
    spec = gateway["spec"]
    assert spec["gatewayClassName"] == GKE_GLOBAL_CLASS
    assert gateway["metadata"]["annotations"][CERTMAP_ANNOTATION] == values["certificateMap"]
    assert spec["addresses"] == [{"type": "NamedAddress", "value": values["staticAddressName"]}]
    listeners = {item["name"]: item for item in spec["listeners"]}
    assert (listeners["https"]["protocol"], listeners["https"]["port"]) == ("HTTPS", 443)
    # GKE refuses tls.certificateRefs beside the certmap annotation: the certificates are the map's.
    assert all("tls" not in item for item in spec["listeners"])
    assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
    policy = _only(renders["production"], "GCPGatewayPolicy")
    assert policy["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": gateway["metadata"]["name"],
    }
    assert policy["spec"]["default"]["sslPolicy"] == values["sslPolicy"]


def _routes_by_listener(docs: list[dict]) -> dict[str, dict]:
    gateway = _only(docs, "Gateway")
    listeners = {item["name"] for item in gateway["spec"]["listeners"]}
    routes = {}
    for route in _kind(docs, "HTTPRoute").values():
        for parent in route["spec"]["parentRefs"]:
            assert parent["name"] == gateway["metadata"]["name"], route["metadata"]["name"]
            assert parent["sectionName"] in listeners, route["metadata"]["name"]
            routes[parent["sectionName"]] = route
    return routes


@pytest.mark.parametrize("value_set", ["production", "default-edge"])
def test_https_route_sends_every_host_and_path_to_the_envoy_service(renders, value_set: str) -> None:
    docs = renders[value_set]
    hostnames = (_production_values()["edge"] if value_set == "production" else EDGE_VALUES)["hostnames"]
    route = _routes_by_listener(docs)["https"]
    assert route["spec"]["hostnames"] == hostnames
    (rule,) = route["spec"]["rules"]
    # No match: Gateway API's default, every path (Envoy routes by path itself).
    assert rule.get("matches", [{"path": {"type": "PathPrefix", "value": "/"}}]) == [
        {"path": {"type": "PathPrefix", "value": "/"}}
    ]
    service = _envoy_service(docs)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": ports["http"]["port"]}]
    # ... and that port reaches the port Envoy's gateway listener binds.
    container_ports = {p["name"]: p["containerPort"] for p in _container(_envoy_deployment(docs))["ports"]}
    config = _rendered_envoy_config(docs)
    (listener,) = [item for item in config["static_resources"]["listeners"] if item["name"] != "health"]
    assert container_ports[ports["http"]["targetPort"]] == listener["address"]["socket_address"]["port_value"]


def test_plain_http_only_redirects_to_https(renders) -> None:
    docs = renders["production"]
    routes = _routes_by_listener(docs)
    redirect = routes["http"]
    assert redirect["spec"]["hostnames"] == routes["https"]["spec"]["hostnames"]
    for rule in redirect["spec"]["rules"]:
        assert not rule.get("backendRefs"), "the port 80 listener must not serve the application"
        assert rule["filters"] == [
            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
        ]
    # Without it, no port 80 listener and no redirect route.
    docs = _documents(_render({"edge": {**EDGE_VALUES, "httpRedirect": False}}))
    assert [item["name"] for item in _only(docs, "Gateway")["spec"]["listeners"]] == ["https"]
    assert set(_routes_by_listener(docs)) == {"https"}


# --------------------------------------------------------------------------- the Envoy Service


@pytest.mark.parametrize("value_set", ["production", "default-edge"])
def test_envoy_service_is_cluster_internal_and_speaks_h2c_behind_the_edge(renders, value_set: str) -> None:
    docs = renders[value_set]
    service = _envoy_service(docs)
    assert service["spec"]["type"] == "ClusterIP", "a load balancer of its own would bypass Cloud Armor"
    (port,) = service["spec"]["ports"]
    assert port["appProtocol"] == "kubernetes.io/h2c"
    # Envoy's gateway listener takes HTTP/2 with prior knowledge on the same port as HTTP/1.1.
    manager = _gateway_manager(_rendered_envoy_config(docs))
    assert manager["codec_type"] in ("AUTO", "HTTP2")
    assert "http2_protocol_options" in manager


def test_edge_off_keeps_the_services_type_and_adds_nothing(renders) -> None:
    docs = renders["default"]
    assert _edge_objects(docs) == []
    service = _envoy_service(docs)
    assert service["spec"]["type"] == "ClusterIP"
    assert all("appProtocol" not in p for p in service["spec"]["ports"])
    for policy in _kind(docs, "NetworkPolicy").values():
        for rule in policy["spec"].get("ingress", []):
            assert all("ipBlock" not in peer for peer in rule.get("from", [])), policy["metadata"]["name"]
    # A LoadBalancer Service stays one while the edge is off, and becomes ClusterIP with it.
    lb = {"gateway": {"service": {"type": "LoadBalancer"}}}
    assert _envoy_service(_documents(_render(lb)))["spec"]["type"] == "LoadBalancer"
    assert _envoy_service(_documents(_render({**lb, "edge": EDGE_VALUES})))["spec"]["type"] == "ClusterIP"


# --------------------------------------------------------------------------- GKE's policies


@pytest.mark.parametrize("value_set", ["production", "default-edge"])
def test_health_check_is_envoys_readiness_endpoint(renders, value_set: str) -> None:
    docs = renders[value_set]
    policy = _only(docs, "HealthCheckPolicy")
    service = _envoy_service(docs)
    assert policy["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": service["metadata"]["name"]}
    config = policy["spec"]["default"]["config"]
    assert config["type"] == "HTTP"
    check = config["httpHealthCheck"]
    port, path = _readiness_endpoint(_rendered_envoy_config(docs))
    assert check["portSpecification"] == "USE_FIXED_PORT"
    assert (check["port"], check["requestPath"]) == (port, path)
    # The same endpoint as the kubelet's readiness probe, on a port the Envoy container declares.
    envoy = _container(_envoy_deployment(docs))
    container_ports = {p["name"]: p["containerPort"] for p in envoy["ports"]}
    probe = envoy["readinessProbe"]["httpGet"]
    assert (container_ports[probe["port"]], probe["path"]) == (port, path)


@pytest.mark.parametrize("value_set", ["production", "default-edge"])
def test_backend_policy_keeps_streams_drains_with_the_gateway_and_has_cloud_armor(renders, value_set: str) -> None:
    docs = renders[value_set]
    values = _production_values()["edge"] if value_set == "production" else EDGE_VALUES
    policy = _only(docs, "GCPBackendPolicy")
    service = _envoy_service(docs)
    assert policy["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": service["metadata"]["name"]}
    default = policy["spec"]["default"]

    # The backend timeout bounds a whole response at the load balancer: no shorter than the
    # longest idle time Envoy allows a stream (SSE replies and gRPC streams).
    manager = _gateway_manager(_rendered_envoy_config(docs))
    idle = [_seconds(manager["stream_idle_timeout"])]
    for host in manager["route_config"]["virtual_hosts"]:
        idle += [_seconds(r["route"]["idle_timeout"]) for r in host["routes"] if "idle_timeout" in r.get("route", {})]
    assert max(idle) >= 3600, idle
    assert default["timeoutSec"] >= max(idle)
    # Envoy keeps idle connections from the load balancer longer than it does.
    assert _seconds(manager["common_http_protocol_options"]["idle_timeout"]) > LB_BACKEND_KEEPALIVE_S

    # A pod being removed keeps its connections as long as the drain sidecar holds Envoy's preStop.
    deployment = _envoy_deployment(docs)
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    args = containers["drain"]["command"]
    drain_seconds = int(args[args.index("--drain-seconds") + 1])
    assert default["connectionDraining"]["drainingTimeoutSec"] == drain_seconds
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain_seconds

    assert default["securityPolicy"] == values["securityPolicy"]
    assert default["logging"]["enabled"] is True
    assert 0 < default["logging"]["sampleRate"] <= 1_000_000


def test_network_policy_admits_googles_load_balancer_and_health_checks(renders) -> None:
    docs = renders["production"]
    gateway_policy = _kind(docs, "NetworkPolicy")[GATEWAY]
    envoy = _container(_envoy_deployment(docs))
    container_ports = {p["name"]: p["containerPort"] for p in envoy["ports"]}
    check = _check(_only(docs, "HealthCheckPolicy")["spec"])
    serving_port = container_ports[_envoy_service(docs)["spec"]["ports"][0]["targetPort"]]

    def admitted(network) -> set[int]:
        ports: set[int] = set()
        for rule in gateway_policy["spec"]["ingress"]:
            peers = rule.get("from")
            if peers is None or any(
                "ipBlock" in p and network.subnet_of(ipaddress.ip_network(p["ipBlock"]["cidr"])) for p in peers
            ):
                ports |= {container_ports.get(p["port"], p["port"]) for p in rule["ports"]}
        return ports

    for network in GOOGLE_LB_RANGES:
        assert {serving_port, check["port"]} <= admitted(network), network
    # Nothing else gains the metrics port: the ranges are Google's only.
    anywhere = ipaddress.ip_network("203.0.113.0/24")
    assert check["port"] not in admitted(anywhere)


# --------------------------------------------------------------------------- values


def test_edge_values_are_required_and_checked() -> None:
    with pytest.raises(HelmValuesError, match="edge"):
        _render({"edge": {"enabled": True}})
    with pytest.raises(HelmValuesError, match="sampleRate|logSampleRate|maximum"):
        _render({"edge": {**EDGE_VALUES, "backend": {"logSampleRate": 2_000_000}}})
    with pytest.raises(HelmValuesError, match="hostnames"):
        _render({"edge": {**EDGE_VALUES, "hostnames": ["Not A Host"]}})
    with pytest.raises(HelmRenderError, match="edge.enabled needs gateway.enabled"):
        _render({"edge": EDGE_VALUES, "gateway": {"enabled": False}})


# --------------------------------------------------------------------------- a real Envoy


def test_envoy_answers_h2c_grpc_and_the_load_balancers_health_check(tmp_path: Path) -> None:
    """The rendered config, run: a gRPC call over HTTP/2 cleartext (how the edge forwards it)
    gets Envoy's own gRPC answer, and the health check as the policy describes it answers 200."""
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    docs = _documents(
        _render({"gateway": {"ports": {"http": http_port, "metrics": metrics_port}}, "edge": EDGE_VALUES})
    )
    config = _rendered_envoy_config(docs)
    # Local copies only: the admin port of this machine's own gateway may be taken, and what the
    # pod mounts (a runtime directory) is a temporary one here.
    on_local_ports(config, admin_port)
    check = _check(_only(docs, "HealthCheckPolicy")["spec"])
    with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{metrics_port}/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{check['port']}{check['requestPath']}", timeout=2) as response:
            assert response.status == 200
        # Not a public method: Envoy answers it itself, in gRPC, over the h2c connection.
        with grpc.insecure_channel(f"127.0.0.1:{http_port}") as channel:
            call = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            with pytest.raises(grpc.RpcError) as refused:
                call(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED, refused.value
