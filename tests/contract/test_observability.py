"""Prometheus rules and Grafana dashboards (deploy/prometheus, deploy/grafana) hold together.

- promtool accepts the local Prometheus config and the rules, and the rules' unit tests pass;
  every alert has a case where it fires and one where it stays quiet, a severity and a runbook;
- the committed dashboard JSON is what deploy/grafana/build_dashboards.py generates;
- every PromQL expression (rules and dashboards) parses, and every metric it reads is one the
  code really exports: names come from scraping a kit-built app's /metrics (with the kit's own
  metric modules loaded) and a real Envoy running deploy/envoy/envoy.yaml, not from a list here.

promtool comes from Debian's `prometheus` package (scripts/setup.sh installs it); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import promql_parser
import pytest
import yaml
from support.envoy import running_envoy
from support.services import free_port

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "workplace.rules.yaml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yaml"))
RUNBOOK = PROMETHEUS_DIR / "RUNBOOK.md"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"
# Series Prometheus makes itself for each scrape target.
PROMETHEUS_SYNTHETIC = {"up"}
# Grafana's own variables, replaced by typical values so promtool can parse the queries.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/setup.sh (apt-get install prometheus)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


def _dashboards() -> dict[str, dict]:
    import json

    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def _dashboard_queries() -> list[str]:
    """Every PromQL string in the dashboards: panel targets and label_values() variables."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            if node.get("type") == "query" and isinstance(node.get("query"), str):
                match = re.fullmatch(r"label_values\((.+),\s*\w+\)", node["query"])
                assert match, f"unexpected variable query {node['query']!r}"
                found.append(match.group(1))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for dashboard in _dashboards().values():
        walk(dashboard)
    assert found, "no queries found in the dashboards"
    return found


def _as_promql(query: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        query = query.replace(macro, value)
    return query


def _all_expressions() -> list[str]:
    return [rule["expr"] for rule in _rules()] + [_as_promql(q) for q in _dashboard_queries()]


# --- promtool ---------------------------------------------------------------------------------


def test_local_prometheus_config_is_valid() -> None:
    _ok(_promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml")))


def test_rules_are_valid() -> None:
    _ok(_promtool("check", "rules", str(RULES_FILE)))


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool tests in deploy/prometheus/tests"
    _ok(_promtool("test", "rules", *map(str, RULE_TESTS)))


def test_every_alert_is_tested_firing_and_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for test_file in RULE_TESTS:
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - fired == set(), "alerts never shown firing in a promtool test"
    assert names - quiet == set(), "alerts never shown staying quiet in a promtool test"


def test_alerts_carry_severity_and_a_runbook_section() -> None:
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip()).lower().replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for alert in _alerts():
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        for key in ("summary", "description", "runbook"):
            assert alert["annotations"].get(key), f"{alert['alert']}: no {key} annotation"
        path, _, anchor = alert["annotations"]["runbook"].partition("#")
        assert (REPO / path) == RUNBOOK and anchor in headings, f"{alert['alert']}: runbook section {anchor!r} missing"


# --- dashboards -------------------------------------------------------------------------------


def test_dashboards_are_what_the_generator_writes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "build_dashboards.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    _ok(result)
    generated = {path.name: path.read_text() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_text() for path in DASHBOARD_DIR.glob("*.json")}
    assert sorted(generated) == sorted(committed), "run deploy/grafana/build_dashboards.py and commit the result"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run deploy/grafana/build_dashboards.py"


def test_dashboards_have_datasource_and_namespace_variables() -> None:
    for name, dashboard in _dashboards().items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["namespace"]["type"] == "query", name
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                assert 'namespace="$namespace"' in target["expr"], f"{name}: not scoped to $namespace: {target}"
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"


# --- PromQL -----------------------------------------------------------------------------------


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    """promtool parses rule files, so the dashboards' queries go into one as recording rules."""
    rules = [{"record": f"check:expression_{i}", "expr": expr} for i, expr in enumerate(_all_expressions())]
    check_file = tmp_path / "expressions.rules.yaml"
    check_file.write_text(yaml.safe_dump({"groups": [{"name": "parse-check", "rules": rules}]}, allow_unicode=True))
    _ok(_promtool("check", "rules", str(check_file)))


def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _sample_names(exposition: str) -> set[str]:
    """Series names as a Prometheus server stores them, read literally from a text exposition
    (prometheus_client's parser renames counters, so it is not used), including families that
    have no sample yet (only their # TYPE line)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
            names.update(name + suffix for suffix in suffixes)
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


async def _service_metric_names() -> set[str]:
    """Scrape /metrics of an app built like every service's, with the kit's metric modules loaded."""
    import workplace_kit.ai.metrics  # noqa: F401 - registers the AI reply metrics
    import workplace_kit.bus  # noqa: F401 - registers the Pub/Sub metrics
    import workplace_kit.business_metrics  # noqa: F401 - registers sessions and feedback delivered
    import workplace_kit.grpc_server  # noqa: F401 - registers the gRPC metrics
    import workplace_kit.outbox  # noqa: F401 - registers the outbox gauge
    from workplace_kit.config import ServiceSettings
    from workplace_kit.service import create_http_app

    app = create_http_app(ServiceSettings(service_name="observability-check"), title="observability check")

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        assert (await client.get("/ping")).status_code == 200  # so the per-request series exist
        response = await client.get("/metrics")
    assert response.status_code == 200
    return _sample_names(response.text)


def _envoy_metric_names(tmp_path: Path) -> set[str]:
    """Run the gateway's own config on free ports, send one request, read /stats/prometheus."""
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    admin_port, listener_port, closed_port = free_port(), free_port(), free_port()
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"]["port_value"] = listener_port
    # Upstreams point at a closed port: the request fails the same way whatever runs on this machine.
    for cluster in config["static_resources"]["clusters"]:
        for endpoints in cluster["load_assignment"]["endpoints"]:
            for endpoint in endpoints["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"]["port_value"] = closed_port
    with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{admin_port}/ready"):
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{listener_port}/", timeout=5)
        assert failed.value.code == 503
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats/prometheus", timeout=5) as response:
            return _sample_names(response.read().decode())


async def test_every_metric_used_is_exported(tmp_path: Path) -> None:
    exported = await _service_metric_names() | _envoy_metric_names(tmp_path) | PROMETHEUS_SYNTHETIC
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    missing: dict[str, set[str]] = {}
    for expr in _all_expressions():
        unknown = _metric_names(expr) - exported - recorded
        if unknown:
            missing[expr] = unknown
    assert not missing, f"metrics nobody exports: {missing}"


def test_metric_name_check_can_fail() -> None:
    """The name extraction sees through functions, aggregations and binary operators."""
    names = _metric_names(
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="1"}[5m]))) / on (x) b_total or vector(0)'
    )
    assert names == {"a_bucket", "b_total"}


# --- the rules follow the code ----------------------------------------------------------------


def _latency_exclusion(rule_name: str, label: str) -> re.Pattern[str]:
    expr = next(rule["expr"] for rule in _rules() if rule.get("record") == rule_name)
    match = re.search(label + r'!~"([^"]+)"', expr)
    assert match, f"{rule_name} has no {label}!~ exclusion"
    return re.compile(match.group(1).replace("\\\\", "\\"))


def test_latency_objective_leaves_out_every_sse_route() -> None:
    from chat_service.app import chat_catalogue
    from chat_service.domain import ChatService
    from chat_service.http_api import build_router
    from chat_service.settings import ChatSettings
    from sse_starlette.sse import EventSourceResponse

    excluded = _latency_exclusion("namespace_container:http_request_duration_seconds_non_ai:p95_5m", "handler")
    # Building the router reads the content and settings only; no repository, engine or relay.
    service = ChatService(ChatSettings(), chat_catalogue(), None, None, None, None)  # type: ignore[arg-type]

    async def nobody() -> None:  # the token check plays no part in which routes exist
        return None

    routes = build_router(service, nobody).routes  # type: ignore[arg-type]
    streaming = [r.path for r in routes if getattr(r, "response_class", None) is EventSourceResponse]
    assert streaming, "chat has no SSE route any more: update this test"
    for path in streaming + ["/events/sessions/{session_id}/feedback"]:
        assert excluded.fullmatch(path), f"SSE route {path} counts towards the 200 ms objective"
    assert not excluded.fullmatch("/api/v2/chat/situations")


def test_latency_objective_leaves_out_every_streaming_rpc() -> None:
    import workplace.chat.v1.chat_pb2
    import workplace.feedback.v1.feedback_pb2
    import workplace.scenario.v1.scenario_pb2
    import workplace.tts.v1.tts_pb2
    import workplace.watch.v1.watch_pb2

    excluded = _latency_exclusion("namespace_container:grpc_server_handling_seconds_non_ai:p95_5m", "grpc_method")
    modules = [
        workplace.chat.v1.chat_pb2,
        workplace.feedback.v1.feedback_pb2,
        workplace.scenario.v1.scenario_pb2,
        workplace.tts.v1.tts_pb2,
        workplace.watch.v1.watch_pb2,
    ]
    methods = [
        (f"/{service.full_name}/{method.name}", method.server_streaming)
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]
    assert methods
    for full_name, streaming in methods:
        if streaming:
            assert excluded.fullmatch(full_name), f"streaming RPC {full_name} counts towards the 200 ms objective"
    assert not excluded.fullmatch("/workplace.chat.v1.ChatService/ListSituations")
