"""The canary in the Helm chart: the gateway's runtime ConfigMap holds the weights that
workplace_kit.canary names for gateway.canary.newPercent, the legacy cluster points at the
legacy app from values, and a real Envoy on the rendered config reads those weights."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from helm_python.errors import HelmRenderError, HelmValuesError
from support.envoy import on_local_ports, running_envoy
from support.services import free_port
from test_deploy_manifests import (
    RELEASE,
    _documents,
    _kind,
    _production_values,
    _render,
    _rendered_envoy_config,
)
from workplace_kit import canary

LEGACY = {"host": "legacy-flask.legacy.svc.cluster.local", "port": 8000}


def _runtime_config_map(docs: list[dict]) -> dict[str, str]:
    return _kind(docs, "ConfigMap")[f"{RELEASE}-gateway-runtime"]["data"]


def _canary_keys(values: dict[str, str]) -> dict[str, str]:
    """The canary's keys among the gateway's run-time keys (the rate limit's switch is there too)."""
    return {k: v for k, v in values.items() if k.startswith(canary.RUNTIME_PREFIX) or k == canary.LEGACY_API_KEY}


def _legacy_address(docs: list[dict]) -> dict:
    clusters = {c["name"]: c for c in _rendered_envoy_config(docs)["static_resources"]["clusters"]}
    endpoint = clusters[canary.LEGACY_CLUSTER]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    return endpoint["endpoint"]["address"]["socket_address"]


@pytest.mark.parametrize("percent", [0, 1, 10, 50, 100])
def test_the_runtime_config_map_holds_the_kits_weights(percent: int) -> None:
    docs = _documents(_render({"gateway": {"canary": {"newPercent": percent, "legacy": LEGACY}}}))
    assert _canary_keys(_runtime_config_map(docs)) == canary.runtime_values({"web": percent})
    assert _legacy_address(docs) == {"address": LEGACY["host"], "port_value": LEGACY["port"]}


def test_production_starts_the_designs_first_phase_against_the_legacy_app() -> None:
    values = _production_values()
    docs = _documents(_render(values))
    share = values["gateway"]["canary"]["newPercent"]
    assert _canary_keys(_runtime_config_map(docs)) == canary.runtime_values({"web": share})
    assert _legacy_address(docs)["address"] == values["gateway"]["canary"]["legacy"]["host"] != ""


def test_without_a_legacy_app_everything_stays_new() -> None:
    docs = _documents(_render({}))
    assert _canary_keys(_runtime_config_map(docs)) == canary.runtime_values({"web": 100})
    with pytest.raises(HelmRenderError, match="legacy.host is empty"):
        _render({"gateway": {"canary": {"newPercent": 10, "legacy": {"host": "", "port": 80}}}})
    with pytest.raises(HelmValuesError, match="newPercent"):
        _render({"gateway": {"canary": {"newPercent": 101, "legacy": LEGACY}}})


def test_weights_change_without_rolling_the_gateway() -> None:
    def pod_annotations(percent: int) -> dict:
        docs = _documents(_render({"gateway": {"canary": {"newPercent": percent, "legacy": LEGACY}}}))
        return _kind(docs, "Deployment")[f"{RELEASE}-gateway"]["spec"]["template"]["metadata"]["annotations"]

    assert pod_annotations(1) == pod_annotations(50)


def test_the_gateway_pod_mounts_the_runtime_where_envoy_reads_it() -> None:
    docs = _documents(_render({}))
    pod = _kind(docs, "Deployment")[f"{RELEASE}-gateway"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["runtime"]["configMap"]["name"] == f"{RELEASE}-gateway-runtime"
    envoy = next(c for c in pod["containers"] if c["name"] == "envoy")
    mounts = {m["name"]: m["mountPath"] for m in envoy["volumeMounts"]}
    layers = _rendered_envoy_config(docs)["layered_runtime"]["layers"]
    assert [layer["name"] for layer in layers] == ["static", "disk", "admin"]  # admin wins: task canary --kube
    assert layers[1]["disk_layer"]["symlink_root"] == f"{mounts['runtime']}/{canary.CURRENT}"


def test_a_real_envoy_reads_the_rendered_weights(tmp_path: Path) -> None:
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    values = {
        "gateway": {
            "ports": {"http": http_port, "metrics": metrics_port},
            "canary": {"newPercent": 10, "legacy": LEGACY},
        }
    }
    docs = _documents(_render(values))
    config = _rendered_envoy_config(docs)
    on_local_ports(config, admin_port)
    with running_envoy(
        config, tmp_path, ready_url=f"http://127.0.0.1:{admin_port}/ready", runtime=_runtime_config_map(docs)
    ):
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/runtime", timeout=2) as answer:
            entries = json.loads(answer.read())["entries"]
        # Then the admin layer (what `task canary -- 0 --kube` sets in a running pod) wins.
        canary.push_admin(f"http://127.0.0.1:{admin_port}", canary.runtime_values({"web": 0}))
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/runtime", timeout=2) as answer:
            after = json.loads(answer.read())["entries"]
    assert _canary_keys({k: e["final_value"] for k, e in entries.items()}) == canary.runtime_values({"web": 10})
    assert _canary_keys({k: e["final_value"] for k, e in after.items()}) == canary.runtime_values({"web": 0})
