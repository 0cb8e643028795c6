"""Redis in production is Memorystore with AUTH and in-transit encryption
(deploy/cloud/config-connector/redis.yaml): the chart gives every pod that talks to Redis its URL
from a secret (the AUTH string is in it) and the server's CA, mounted where WP_REDIS_CA_FILE
points. tests/integration/test_redis_tls.py shows the kit connecting that way."""

from __future__ import annotations

from pathlib import Path

import yaml
from test_deploy_manifests import _documents, _production_values, _render

REPO = Path(__file__).resolve().parents[2]


def _containers(docs: list[dict]):
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            if "WP_REDIS_URL" in env:
                yield doc["metadata"]["name"], pod, container, env


def test_production_reads_the_url_from_a_secret_and_verifies_the_server() -> None:
    values = _production_values()
    redis = values["global"]["redis"]
    seen = 0
    for name, pod, container, env in _containers(_documents(_render(values))):
        seen += 1
        assert env["WP_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": redis["secretName"],
            "key": redis["secretKey"],
        }, name
        ca_file = Path(env["WP_REDIS_CA_FILE"]["value"])
        assert ca_file.name == redis["caKey"], name
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted = [n for n, path in mounts.items() if str(ca_file.parent) == path]
        assert mounted, f"{name}: nothing mounted at {ca_file.parent}"
        assert volumes[mounted[0]]["configMap"]["name"] == redis["caConfigMap"], name
    assert seen >= 7


def test_the_cloud_resources_have_the_tls_and_auth_that_production_expects() -> None:
    instance = yaml.safe_load((REPO / "deploy" / "cloud" / "config-connector" / "redis.yaml").read_text())
    assert instance["spec"]["authEnabled"] is True
    assert instance["spec"]["transitEncryptionMode"] == "SERVER_AUTHENTICATION"


def test_a_plain_url_stays_a_value_without_a_ca() -> None:
    for name, pod, _container, env in _containers(_documents(_render({}))):
        assert env["WP_REDIS_URL"]["value"].startswith("redis://"), name
        assert "WP_REDIS_CA_FILE" not in env, name
        assert all(v["name"] != "redis-ca" for v in pod["volumes"]), name
