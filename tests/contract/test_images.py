"""The service images' build (deploy/images/Containerfile, scripts/images.py, the generated
Cloud Build file) agrees with the registry, the packages and the chart. Building and running an
image is `task test:images` (tests/images), which needs buildah."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from workplace_kit.registry import load as load_registry

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "deploy" / "images" / "Containerfile"
CLOUDBUILD = REPO / "deploy" / "images" / "cloudbuild.yaml"
VALUES = REPO / "deploy" / "helm" / "workplace" / "values.yaml"


def test_every_service_has_the_package_and_entry_point_the_image_installs() -> None:
    text = CONTAINERFILE.read_text()
    assert '--package "workplace-${SERVICE}"' in text and 'ln -s "workplace-${SERVICE}"' in text
    for service in load_registry().services:
        project = tomllib.loads((REPO / "services" / service.name / "pyproject.toml").read_text())["project"]
        assert project["name"] == f"workplace-{service.name}", service.name
        assert project["scripts"][f"workplace-{service.name}"] == f"{service.module}.__main__:main", service.name


def test_the_image_runs_as_the_user_the_chart_expects_and_keeps_no_build_tools() -> None:
    text = CONTAINERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert [s.split()[0:3] for s in stages] == [["${BASE}", "AS", "build"], ["${BASE}", "AS", "runtime"]]
    runtime = stages[-1]
    security = yaml.safe_load(VALUES.read_text())["serviceDefaults"]["podSecurityContext"]
    assert f"USER {security['runAsUser']}:{security['runAsGroup']}" in runtime
    # Only the installed environment crosses over: no uv, no sources, no CA bundle of the build.
    assert re.findall(r"^COPY .*$", runtime, flags=re.M) == ["COPY --from=build /app/venv /app/venv"]
    assert "--no-editable" in stages[0] and "--frozen" in stages[0] and "--no-dev" in stages[0]
    # The base is always given: a digest in CI, the local Debian base here; never a silent default.
    assert re.search(r"^ARG BASE$", text, flags=re.M)


def test_cloud_build_makes_every_service_image_from_one_pinned_base() -> None:
    build = yaml.safe_load(CLOUDBUILD.read_text())
    steps = {step["id"]: step for step in build["steps"]}
    assert "docker inspect --format '{{index .RepoDigests 0}}'" in steps["base-digest"]["args"][1]
    services = [s.name for s in load_registry().services]
    assert sorted(set(steps) - {"base-digest"}) == sorted([*services, "gateway"])
    for name in [*services, "gateway"]:
        command = steps[name]["args"][1]
        assert steps[name]["waitFor"] == ["base-digest"]
        if name == "gateway":
            assert (
                "-f deploy/images/Containerfile.gateway --build-arg BASE=$$(cat /workspace/base-image.txt)" in command
            )
        else:
            assert f"--build-arg SERVICE={name} --build-arg BASE=$$(cat /workspace/base-image.txt)" in command
        assert f"docker push ${{_REGISTRY}}/{name}:$COMMIT_SHA" in command
