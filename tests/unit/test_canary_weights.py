"""The canary's weights (workplace_kit.canary), the registry's split routes and scripts/canary.py's
cluster commands: no Envoy, no cluster (tests/e2e/test_canary_split.py runs the real gateway)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from workplace_kit import canary
from workplace_kit.registry import RegistryError, load, parse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import canary as canary_script  # noqa: E402  (scripts/canary.py)


def test_a_share_gives_both_weights_and_opens_the_legacy_paths_below_100():
    assert canary.runtime_values({"web": 10}) == {
        "gateway.canary.web.web_http": "10",
        "gateway.canary.web.legacy": "90",
        "gateway.legacy.api": "100",
    }
    assert canary.runtime_values({"web": 100})["gateway.legacy.api"] == "0"
    assert canary.runtime_values({"web": 0})["gateway.canary.web.legacy"] == "100"


@pytest.mark.parametrize("bad", [-1, 101, 10.5, "10", True])
def test_a_share_outside_0_to_100_is_refused(bad):
    with pytest.raises(canary.CanaryError, match="web"):
        canary.runtime_values({"web": bad})


def test_the_layer_is_swapped_in_one_rename_and_old_versions_go(tmp_path):
    layer = tmp_path / "runtime"
    first = canary.write_layer(layer, canary.runtime_values({"web": 10}))
    assert (layer / canary.CURRENT).resolve() == first.resolve()
    second = canary.write_layer(layer, canary.runtime_values({"web": 50}))
    assert (layer / canary.CURRENT).resolve() == second.resolve()
    assert not first.exists()
    assert canary.shares(canary.read_layer(layer), ["web"]) == {"web": 50}
    # Only the current version and its link are left (no ..data_tmp).
    assert sorted(p.name for p in layer.iterdir()) == sorted([second.name, canary.CURRENT])


def test_no_layer_reads_as_the_default_all_new(tmp_path):
    assert canary.shares(canary.read_layer(tmp_path / "missing"), ["web"]) == {"web": 100}


def test_the_command_keeps_other_services_shares_and_refuses_unknown_ones(tmp_path, capsys):
    layer = tmp_path / "runtime"
    assert canary.main(["set", "25", "--dir", str(layer)]) == 0
    assert canary.read_layer(layer)["gateway.canary.web.web_http"] == "25"
    assert canary.main(["set", "5", "chat", "--dir", str(layer)]) == 2
    assert "chat" in capsys.readouterr().err
    assert canary.read_layer(layer)["gateway.canary.web.web_http"] == "25"


def test_the_registry_splits_the_pages_and_names_the_legacy_apps_paths():
    registry = load()
    split = [(s.name, r.value) for s in registry.services for r in s.routes if r.canary]
    assert split == [("web", "/")]
    assert registry.legacy is not None
    assert [r.value for r in registry.legacy.routes] == ["/api/"]
    assert all(r.token == "optional" for r in registry.legacy.routes)


def test_a_split_route_without_a_legacy_app_is_refused():
    text = '[services.web]\nhttp_port = 1\nroutes = [{ prefix = "/", canary = true }]\n'
    with pytest.raises(RegistryError, match="no \\[legacy\\]"):
        parse(text)
    with pytest.raises(RegistryError, match="already"):
        parse(text + "[legacy]\nhttp_port = 1\n")


def test_the_generated_gateway_splits_by_the_same_keys_and_stays_sticky():
    config = yaml.safe_load((REPO / "deploy" / "envoy" / "envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    split = [r for r in routes if "weighted_clusters" in r.get("route", {})]
    assert len(split) == 2  # with the cookie, and the first request that gets one
    with_cookie, first = split
    for route in split:
        weighted = route["route"]["weighted_clusters"]
        assert weighted["runtime_key_prefix"] == canary.split_prefix("web")
        assert weighted["use_hash_policy"] is True
        keys = {f"{weighted['runtime_key_prefix']}.{c['name']}" for c in weighted["clusters"]}
        assert keys == set(canary.runtime_values({"web": 50})) - {canary.LEGACY_API_KEY}
    assert with_cookie["route"]["hash_policy"] == [{"cookie": {"name": canary.STICKY_COOKIE}}]
    assert first["route"]["hash_policy"] == [{"header": {"header_name": "x-request-id"}}]
    set_cookie = first["response_headers_to_add"][0]["header"]["value"]
    assert set_cookie.startswith(f"{canary.STICKY_COOKIE}=%REQ(x-request-id)%;")
    legacy_api = [r for r in routes if r.get("route", {}).get("cluster") == canary.LEGACY_CLUSTER]
    assert [r["match"]["runtime_fraction"]["runtime_key"] for r in legacy_api] == [canary.LEGACY_API_KEY]
    # The legacy app's paths come after every service's own /api/v2 routes, before the pages.
    http = [r for r in routes if "grpc" not in r["match"]]
    order = [r["match"].get("path_separated_prefix") or r["match"].get("prefix") for r in http]
    assert order.index("/api/") > order.index("/api/v2/chat")
    assert order.index("/api/") < order.index("/")


def test_kube_mode_sets_each_pod_at_once_then_the_chart_value():
    commands = canary_script.kube_commands(0, "wp", "prod", ["pod/gw-a", "pod/gw-b"])
    assert [c[:5] for c in commands[:2]] == [
        ["kubectl", "exec", "--namespace", "prod", "pod/gw-a"],
        ["kubectl", "exec", "--namespace", "prod", "pod/gw-b"],
    ]
    assert commands[0][commands[0].index("--") + 1 :] == [
        *("python", "-m", "workplace_kit.canary", "set", "0", "--admin", canary_script.ENVOY_ADMIN),
    ]
    assert commands[-1][:2] == ["helm", "upgrade"]
    assert "--reuse-values" in commands[-1] and "gateway.canary.newPercent=0" in commands[-1]


def test_kube_mode_finds_the_gateway_pods_by_the_charts_labels():
    seen = []

    def run(command):
        seen.append(command)
        return "pod/wp-gateway-1\npod/wp-gateway-2\n"

    assert canary_script.gateway_pods("wp", "prod", run) == ["pod/wp-gateway-1", "pod/wp-gateway-2"]
    assert "app.kubernetes.io/instance=wp,app.kubernetes.io/component=gateway" in seen[0]


def test_the_local_layer_belongs_to_the_run_folder():
    assert canary_script.DEFAULT.envoy_runtime == REPO / ".run" / "envoy-runtime"
    assert os.fspath(canary_script.CHART).endswith("deploy/helm/workplace")
