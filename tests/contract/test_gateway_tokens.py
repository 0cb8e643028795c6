"""The gateway's token check in the cluster accepts exactly the tokens the services accept:
the issuer and audience come from values (auth.tokens) to every workload and to Envoy's
jwt_authn provider, and the JWKS comes from the auth service inside the cluster."""

from __future__ import annotations

from test_deploy_manifests import (
    _documents,
    _kind,
    _production_values,
    _render,
    _rendered_envoy_config,
)
from workplace_kit.config import ServiceSettings


def _provider(docs: list[dict]) -> dict:
    manager = _rendered_envoy_config(docs)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    jwt = next(f for f in manager["typed_config"]["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
    return jwt["typed_config"]["providers"]["workplace"]


def _workload_env(docs: list[dict]) -> dict[str, dict[str, str]]:
    result = {}
    for name, deployment in _kind(docs, "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if "WP_AUTH_JWKS_URL" in env:
                result[f"{name}/{container['name']}"] = env
    return result


def test_production_tokens_name_the_public_site_everywhere() -> None:
    values = _production_values()
    tokens = values["auth"]["tokens"]
    docs = _documents(_render(values))
    provider = _provider(docs)
    assert provider["issuer"] == tokens["issuer"]
    assert provider["audiences"] == [tokens["audience"]]
    envs = _workload_env(docs)
    assert len(envs) >= 7  # every service's workloads
    for name, env in envs.items():
        assert env["WP_AUTH_ISSUER"] == tokens["issuer"], name
        assert env["WP_AUTH_AUDIENCE"] == tokens["audience"], name
    # The keys come from auth inside the cluster, through the gateway's own auth cluster.
    remote = provider["remote_jwks"]["http_uri"]
    assert remote["cluster"] == "auth_http" and remote["uri"].endswith("/.well-known/jwks.json")


def test_without_values_the_gateway_and_services_keep_the_same_defaults() -> None:
    docs = _documents(_render({}))
    provider = _provider(docs)
    fields = ServiceSettings.model_fields
    assert provider["issuer"] == fields["auth_issuer"].default
    assert provider["audiences"] == [fields["auth_audience"].default]
    assert all("WP_AUTH_ISSUER" not in env for env in _workload_env(docs).values())
