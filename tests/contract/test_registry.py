"""The service registry (libs/kit/src/workplace_kit/services.toml) is the one place a service
is named: the generated files are fresh, and a throwaway service added with one entry shows
up in the gateway, the local scrape config, the chart's table and the local runtime."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workplace_kit import registry

REPO = Path(__file__).resolve().parents[2]
THROWAWAY = """
[services.quiz]
description = "a throwaway service for this test"
http_port = 8199
grpc_port = 50199
grpc_service = "workplace.quiz.v1.QuizService"
public_rpcs = ["Ask"]
database = true
routes = [{ path_prefix = "/api/v2/quiz", timeout = "30s" }]
"""


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_for_registry_test", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_fresh():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + " — run `task generate`"


def test_a_new_service_is_one_registry_entry(tmp_path):
    generate = _script("generate")
    localrt = _script("localrt")
    bigger = registry.parse(registry.REGISTRY_FILE.read_text() + THROWAWAY)
    quiz = bigger.get("quiz")

    envoy = yaml.safe_load(generate.envoy(bigger))
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    assert {"quiz_http", "quiz_grpc"} <= set(clusters)
    routes = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"
    ]["virtual_hosts"][0]["routes"]
    # Not the direct 404s, nor the pages' split between web and the legacy app (weighted clusters).
    by_cluster = {r["route"]["cluster"]: r["match"] for r in routes if "cluster" in r.get("route", {})}
    assert by_cluster["quiz_http"] == {"path_separated_prefix": "/api/v2/quiz"}
    assert by_cluster["quiz_grpc"] == {"path": "/workplace.quiz.v1.QuizService/Ask", "grpc": {}}
    assert routes[-1]["match"] == {"prefix": "/"}, "the pages' catch-all stays last"

    prometheus = yaml.safe_load(generate.prometheus(bigger))
    targets = [t for c in prometheus["scrape_configs"] for t in c["static_configs"]]
    assert {"targets": ["127.0.0.1:8199"], "labels": {"namespace": "local", "container": "quiz"}} in targets

    chart = yaml.safe_load(generate.helm_services(bigger))["services"]["quiz"]
    assert chart["ports"] == {"http": 8199, "grpc": 50199} and chart["module"] == "quiz_service"
    assert chart["uses"] == {"database": True, "gemini": False}

    toml = tmp_path / "services.toml"
    toml.write_text(registry.REGISTRY_FILE.read_text() + THROWAWAY)
    services = localrt.registry_services(toml)
    runtime = localrt.Runtime(root=tmp_path / "run", services=services, gateway=True)
    conf = localrt.supervisord_conf(runtime, env={})
    assert "[program:quiz]" in conf and "quiz_service" in conf and 'WP_HTTP_PORT="8199"' in conf.replace("'", '"')
    assert quiz.http_port == 8199


def test_the_registry_refuses_what_would_clash():
    with pytest.raises(registry.RegistryError, match="8101"):
        registry.parse(registry.REGISTRY_FILE.read_text() + "\n[services.copy]\nhttp_port = 8101\n")
    with pytest.raises(registry.RegistryError, match="grpc_port and grpc_service"):
        registry.parse("[services.half]\nhttp_port = 9000\ngrpc_port = 9001\n")
    with pytest.raises(registry.RegistryError, match="exactly one"):
        registry.parse('[services.bad]\nhttp_port = 9000\nroutes = [{ timeout = "1s" }]\n')
    with pytest.raises(registry.RegistryError, match="unknown field"):
        registry.parse("[services.typo]\nhttp_port = 9000\ngrcp_port = 1\n")


def test_the_gateway_retries_a_grpc_call_on_unavailable_only_where_the_proto_says_it_is_safe():
    from google.protobuf import descriptor_pb2, descriptor_pool

    config = yaml.safe_load((REPO / "deploy" / "envoy" / "envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {
        r["match"]["path"]: r for r in manager["route_config"]["virtual_hosts"][0]["routes"] if "path" in r["match"]
    }
    checked = {"safe": 0, "unsafe": 0}
    for service in registry.load().services:
        for rpc in service.public_rpcs:
            method = descriptor_pool.Default().FindServiceByName(service.grpc_service).methods_by_name[rpc]
            safe = method.GetOptions().idempotency_level != descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN
            retry_on = routes[f"/{service.grpc_service}/{rpc}"]["route"]["retry_policy"]["retry_on"].split(",")
            # A call that never reached a service is always safe to send again.
            assert {"connect-failure", "refused-stream", "reset-before-request"} <= set(retry_on), rpc
            assert ("unavailable" in retry_on) == safe, rpc
            checked["safe" if safe else "unsafe"] += 1
    assert checked["safe"] >= 10 and checked["unsafe"] >= 5  # reads retried; StreamReply, StartSession... not
