"""Cloud SQL with IAM database authentication: in production every pod with a database runs the
Cloud SQL Auth Proxy as a native sidecar and connects through it as its service's own Google
service account, which is the IAM user deploy/cloud/config-connector/database.yaml creates; no
database password reaches those pods."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
import yaml
from helm_python.errors import HelmRenderError
from test_deploy_manifests import _documents, _production_values, _render

REPO = Path(__file__).resolve().parents[2]


def _database_pods(docs: list[dict]):
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0].get("env", [])}
        if "WP_DATABASE_URL" in env:
            yield doc["metadata"]["name"], pod, env


def _iam_users() -> set[str]:
    text = (REPO / "deploy" / "cloud" / "config-connector" / "database.yaml").read_text()
    return {
        d["spec"]["resourceID"]
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "SQLUser" and d["spec"].get("type") == "CLOUD_IAM_SERVICE_ACCOUNT"
    }


def test_production_connects_each_service_as_its_own_iam_user_through_the_proxy() -> None:
    values = _production_values()
    proxy = values["cloudSqlProxy"]
    project = proxy["instanceConnectionName"].split(":")[0]
    iam_users = {user.replace("${PROJECT_ID}", project) for user in _iam_users()}
    seen = 0
    for name, pod, env in _database_pods(_documents(_render(values))):
        seen += 1
        url = urllib.parse.urlsplit(env["WP_DATABASE_URL"]["value"])
        user = urllib.parse.unquote(url.username or "")
        assert user in iam_users, (name, user)
        assert url.password is None and (url.hostname, url.port) == ("127.0.0.1", 5432), name
        assert url.path == "/workplace", name
        sidecars = pod["initContainers"]
        assert [c["name"] for c in sidecars] == ["cloud-sql-proxy"], name
        assert sidecars[0]["restartPolicy"] == "Always", "a native sidecar: up before the service, down after it"
        args = sidecars[0]["args"]
        assert {"--auto-iam-authn", "--private-ip", "--address=127.0.0.1", "--port=5432"} <= set(args), name
        assert args[-1] == proxy["instanceConnectionName"]
    assert seen >= 5  # chat, feedback (API and worker), auth, scenario, watch, tts, relays


def test_the_migrations_job_grants_each_service_iam_user_its_schema() -> None:
    """The IAM users own nothing: each service's migrations Job (the DDL role) grants its IAM user
    read and write on its schema's rows (workplace_kit.db --grant-to, tests/integration/
    test_database_roles.py runs it), the same user the service's pods sign in as."""
    values = _production_values()
    docs = _documents(_render(values))
    users_by_service: dict[str, set[str]] = {}
    for name, _pod, env in _database_pods(docs):
        user = urllib.parse.unquote(urllib.parse.urlsplit(env["WP_DATABASE_URL"]["value"]).username or "")
        service = name.split("-")[1]  # <release>-<service>[-worker|-outbox-relay]
        users_by_service.setdefault(service, set()).add(user)
    jobs = {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]["containers"][0]["command"]
        for doc in docs
        if doc["kind"] == "Job" and doc["metadata"]["name"].endswith("-migrations")
    }
    assert len(jobs) >= 5
    for name, command in jobs.items():
        schema = command[command.index("--schema") + 1]
        granted = {command[i + 1] for i, word in enumerate(command) if word == "--grant-to"}
        assert granted == users_by_service[schema], (name, granted, users_by_service[schema])


def test_without_the_proxy_the_url_comes_from_the_secret() -> None:
    for name, pod, env in _database_pods(_documents(_render({}))):
        assert "secretKeyRef" in env["WP_DATABASE_URL"]["valueFrom"], name
        assert "initContainers" not in pod, name
    for doc in _documents(_render({})):
        if doc["kind"] == "Job":
            assert "--grant-to" not in doc["spec"]["template"]["spec"]["containers"][0]["command"]


def test_the_proxy_needs_an_instance_and_a_service_account() -> None:
    with pytest.raises(HelmRenderError, match="instanceConnectionName"):
        _render({"cloudSqlProxy": {"enabled": True}})
