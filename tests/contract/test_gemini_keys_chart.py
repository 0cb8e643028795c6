"""The Gemini keys in production come from Secret Manager, not from a Kubernetes Secret: GKE's
Secret Manager add-on mounts the secret's version as a file in the pods that call Gemini, and the
services read it through WP_SECRETS_DIR (workplace_kit.config.load_settings). Checked against the
published SecretProviderClass CRD, the Config Connector manifests (the secret and who may read
it) and the settings loader itself."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml
from test_deploy_manifests import _crd_schema, _documents, _production_values, _render
from workplace_kit.config import ServiceSettings, load_settings
from workplace_kit.registry import load as load_registry

REPO = Path(__file__).resolve().parents[2]
CRD = Path(__file__).parent / "data" / "secrets-store-csi" / "secretproviderclasses.yaml"
KCC = REPO / "deploy" / "cloud" / "config-connector"


def _deployments(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def _gemini_callers() -> set[str]:
    registry = load_registry()
    return {name for name in registry.names if registry.get(name).gemini}


def _kcc(file: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((KCC / file).read_text()) if d]


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return _documents(_render(_production_values()))


def test_the_keys_are_mounted_from_secret_manager_in_every_pod_that_calls_gemini(production) -> None:
    values = _production_values()
    resource = values["global"]["gemini"]["secretManager"]
    (spc,) = [d for d in production if d["kind"] == "SecretProviderClass"]
    errors = [e.message for e in jsonschema.Draft7Validator(_crd_schema(CRD, "v1")).iter_errors(spc)]
    assert errors == []
    assert spc["spec"]["provider"] == "gke"  # GKE's managed add-on, not the community provider
    (entry,) = yaml.safe_load(spc["spec"]["parameters"]["secrets"])
    assert entry == {"resourceName": resource, "path": "WP_GEMINI_API_KEYS"}

    callers = _gemini_callers()
    mounted = set()
    for name, deployment in _deployments(production).items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        assert "WP_GEMINI_API_KEYS" not in env, f"{name}: the keys must not pass through a Kubernetes Secret"
        if "WP_SECRETS_DIR" not in env:
            assert "gemini-keys" not in {v["name"] for v in pod.get("volumes", [])}, name
            continue
        mounted.add(env["WP_SERVICE_NAME"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "gemini-keys"]
        assert mount["mountPath"] == env["WP_SECRETS_DIR"]["value"] and mount["readOnly"], name
        (volume,) = [v for v in pod["volumes"] if v["name"] == "gemini-keys"]
        assert volume["csi"]["driver"] == "secrets-store-gke.csi.k8s.io", name
        assert volume["csi"]["volumeAttributes"]["secretProviderClass"] == spc["metadata"]["name"], name
    assert mounted == callers and callers, (mounted, callers)


def test_the_mounted_secret_is_the_one_config_connector_declares_and_each_caller_may_read_it() -> None:
    values = _production_values()
    _, project, _, secret, _, _ = values["global"]["gemini"]["secretManager"].split("/")
    assert project == values["cloudSqlProxy"]["instanceConnectionName"].split(":")[0]
    declared = {d["metadata"]["name"] for d in _kcc("secrets.yaml") if d["kind"] == "SecretManagerSecret"}
    assert secret in declared
    readers = {
        d["metadata"]["name"].removesuffix("-gemini-keys-accessor").removeprefix("workplace-")
        for d in _kcc("service-accounts.yaml")
        if d["kind"] == "IAMPolicyMember"
        and d["spec"]["role"] == "roles/secretmanager.secretAccessor"
        and d["spec"]["resourceRef"]["name"] == secret
    }
    assert readers == _gemini_callers()


def test_a_service_reads_the_keys_as_the_pod_sees_them(production, tmp_path, monkeypatch) -> None:
    """What a chat pod's environment and the add-on's file give the settings loader."""
    chat = next(d for d in _deployments(production).values() if d["metadata"]["name"].endswith("-chat"))
    env = {e["name"]: e.get("value") for e in chat["spec"]["template"]["spec"]["containers"][0]["env"]}
    (tmp_path / "WP_GEMINI_API_KEYS").write_text("AIza-first\nAIza-second\n")  # as Secret Manager keeps it
    monkeypatch.delenv("WP_GEMINI_API_KEYS", raising=False)
    monkeypatch.setenv("WP_SECRETS_DIR", str(tmp_path))  # the pod's path, here
    monkeypatch.setenv("WP_AI_PROVIDER", env["WP_AI_PROVIDER"])
    settings = load_settings(ServiceSettings)
    assert env["WP_AI_PROVIDER"] == "gemini" and settings.gemini_enabled
    assert settings.gemini_api_keys == ["AIza-first", "AIza-second"]


def test_without_secret_manager_the_keys_come_from_the_optional_secret() -> None:
    docs = _documents(_render({}))
    assert not [d for d in docs if d["kind"] == "SecretProviderClass"]
    chat = next(d for d in _deployments(docs).values() if d["metadata"]["name"].endswith("-chat"))
    env = {e["name"]: e for e in chat["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WP_GEMINI_API_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "WP_SECRETS_DIR" not in env
