"""The standalone outbox relays in the Helm chart (templates/outbox-relay.yaml): every workload
that KEDA may scale to zero and whose service owns a database runs without its in-process relay
(WP_OUTBOX_RELAY=false), and its service gets a <service>-outbox-relay Deployment that runs
`python -m workplace_kit.outbox relay` with the same image, account and settings, so the
events it writes go out while no worker runs. The relay itself is tested end to end in
tests/integration/test_outbox.py."""

from __future__ import annotations

import inspect

import pytest
from helm_python.chart import Chart
from helm_python.errors import HelmValuesError
from test_deploy_manifests import (
    CHART_DIR,
    RELEASE,
    _assert_hardened_and_sized,
    _container,
    _documents,
    _env,
    _kind,
    _production_values,
    _render,
    _selects,
    _settings_for,
    _settings_from_env,
)
from workplace_kit import outbox
from workplace_kit.config import ServiceSettings

RELAY_SUFFIX = "-outbox-relay"
SAME_AS_THE_SERVICE = (
    "WP_SERVICE_NAME",
    "WP_ENVIRONMENT",
    "WP_PUBSUB_PROJECT",
    "WP_DATABASE_URL",
    "WP_MIGRATE_ON_START",
    "WP_ENCRYPTION_KEK",
    "WP_ENCRYPTION_KMS_KEY",
    "WP_ENCRYPTION_KEYS",
    "WP_PUBSUB_NAME_SUFFIX",
)


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return _documents(_render(_production_values()))


def _relays(docs: list[dict]) -> dict[str, dict]:
    return {n: d for n, d in _kind(docs, "Deployment").items() if n.endswith(RELAY_SUFFIX)}


def _scaled_to_zero_with_a_database(docs: list[dict]) -> dict[str, dict]:
    """The Deployments a ScaledObject may take to zero replicas whose pods hold a database URL."""
    deployments = _kind(docs, "Deployment")
    found = {}
    for scaled in _kind(docs, "ScaledObject").values():
        target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
        if scaled["spec"]["minReplicaCount"] == 0 and "WP_DATABASE_URL" in _env(_container(target)):
            found[target["metadata"]["name"]] = target
    return found


def _selector(obj: dict) -> dict[str, str]:
    spec = obj["spec"]
    if obj["kind"] == "Service":
        return spec["selector"]
    return spec.get("selector", spec.get("podSelector", {}))["matchLabels"]


def _service_of(deployment: dict) -> str:
    return _env(_container(deployment))["WP_SERVICE_NAME"]["value"]


def test_production_scales_the_feedback_worker_to_zero_with_a_relay_beside_it(production) -> None:
    workers = _scaled_to_zero_with_a_database(production)
    assert f"{RELEASE}-feedback-worker" in workers, "values-production.yaml: the feedback worker scales to zero"
    expected = {f"{RELEASE}-{_service_of(w)}{RELAY_SUFFIX}" for w in workers.values()}
    assert set(_relays(production)) == expected


def test_a_worker_that_can_reach_zero_runs_without_its_relay(production, monkeypatch: pytest.MonkeyPatch) -> None:
    workers = _scaled_to_zero_with_a_database(production)
    for name, deployment in _kind(production, "Deployment").items():
        if name.endswith(RELAY_SUFFIX) or "WP_DATABASE_URL" not in _env(_container(deployment)):
            continue
        with monkeypatch.context() as patch:
            settings = _settings_for(_service_of(deployment), _container(deployment), patch)
        if name in workers:
            assert _env(_container(deployment)).get("WP_OUTBOX_RELAY", {}).get("value") == "false", name
            assert settings.outbox_relay is False and settings.run_workers is True, name
        else:
            # Its pods always run (or it runs no workers): it relays its service's events itself.
            assert "WP_OUTBOX_RELAY" not in _env(_container(deployment)), name
            assert settings.outbox_relay is True, name


def test_each_relay_runs_the_kits_relay_for_its_services_schema(production, monkeypatch) -> None:
    workers = {_service_of(w): w for w in _scaled_to_zero_with_a_database(production).values()}
    relay_values = Chart.load(CHART_DIR).values["outboxRelay"]
    for name, relay in _relays(production).items():
        service = name.removeprefix(f"{RELEASE}-").removesuffix(RELAY_SUFFIX)
        worker = workers[service]
        container, worker_container = _container(relay), _container(worker)
        assert relay["spec"]["replicas"] == 1, name
        assert container["command"] == [
            "python", "-m", "workplace_kit.outbox", "relay", "--schema", service,
            "--poll-interval-s", str(relay_values["pollIntervalSeconds"]),
        ]  # fmt: skip
        # The kit's CLI takes exactly these arguments (--help stops before anything runs).
        with pytest.raises(SystemExit) as exited:
            outbox.main([*container["command"][3:], "--help"])
        assert exited.value.code == 0
        # The service's image and Workload Identity (Pub/Sub publisher, its KMS key).
        assert container["image"] == worker_container["image"], name
        pod, worker_pod = relay["spec"]["template"]["spec"], worker["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == worker_pod["serviceAccountName"] == f"{RELEASE}-{service}"
        # The same database, keys and Pub/Sub namespace as the workers whose events it publishes.
        env, worker_env = _env(container), _env(worker_container)
        for var in SAME_AS_THE_SERVICE:
            assert env.get(var) == worker_env.get(var), f"{name}: {var}"
        assert "WP_DATABASE_URL" in env and "WP_OUTBOX_RELAY" not in env
        assert "WP_GEMINI_API_KEYS" not in env, "the relay calls no AI"
        # Every variable is one the kit's settings read, with a value they accept.
        with monkeypatch.context() as patch:
            settings = _settings_from_env(ServiceSettings, name, container, patch)
        with monkeypatch.context() as patch:
            worker_settings = _settings_for(service, worker_container, patch)
        assert settings.service_name == service
        assert settings.pubsub_name_suffix == worker_settings.pubsub_name_suffix
        assert settings.http_host == "0.0.0.0"
        assert settings.database_pool_max == relay_values["databasePoolMax"]
        assert [p["name"] for p in container["ports"]] == ["http"]
        assert settings.http_port == container["ports"][0]["containerPort"]
        # Health and readiness like the services'; small; hardened like every workload.
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["resources"] == relay_values["resources"]
        _assert_hardened_and_sized(name, relay, _kind(production, "ServiceAccount"))
        assert pod["securityContext"] == worker_pod["securityContext"]
        assert container["securityContext"] == worker_container["securityContext"]
        # SIGTERM: it finishes the batch under way, bounded by its claim on the rows.
        claim_s = inspect.signature(outbox.OutboxRelay).parameters["claim_s"].default
        assert settings.shutdown_grace_s >= claim_s
        assert pod["terminationGracePeriodSeconds"] == settings.shutdown_drain_s + settings.shutdown_grace_s + 10


def test_each_relay_has_its_pdb_policy_and_scrape_and_nothing_scales_or_routes_to_it(production) -> None:
    relays = _relays(production)
    assert relays
    for name, relay in relays.items():
        labels = relay["spec"]["template"]["metadata"]["labels"]

        def selecting(kind: str, labels: dict = labels) -> list[dict]:
            return [d for d in _kind(production, kind).values() if _selects(_selector(d), labels)]

        # One replica: a PDB that never blocks a node drain (the events wait in the outbox).
        (pdb,) = selecting("PodDisruptionBudget")
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}, name
        # Ingress: only Prometheus, on the HTTP port (besides the release's default deny).
        policies = selecting("NetworkPolicy")
        assert sorted(p["metadata"]["name"] for p in policies) == sorted([f"{RELEASE}-default-deny-ingress", name])
        (own,) = [p for p in policies if p["metadata"]["name"] == name]
        (rule,) = own["spec"]["ingress"]
        assert [list(peer) for peer in rule["from"]] == [["namespaceSelector", "podSelector"]], name
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        (monitor,) = selecting("PodMonitoring")
        assert monitor["spec"]["endpoints"][0]["port"] == "http"
        assert selecting("Service") == [], f"{name} serves nothing"
        targets = {s["spec"]["scaleTargetRef"]["name"] for s in _kind(production, "ScaledObject").values()}
        assert name not in targets, f"{name} is not autoscaled"


def test_no_relay_where_every_worker_keeps_a_pod() -> None:
    for values in (
        {},  # no KEDA: an HPA never goes below one replica
        {"keda": {"enabled": True}},  # KEDA, every minReplicas at least 1
        # web owns no database: its worker at zero leaves no outbox behind.
        {"keda": {"enabled": True}, "services": {"web": {"autoscaling": {"minReplicas": 0}}}},
        # Production with the workers (feedback's, tts's) held at one pod.
        {
            **_production_values(),
            "services": {
                **_production_values()["services"],
                **{
                    service: {
                        **_production_values()["services"][service],
                        "worker": {
                            **_production_values()["services"][service].get("worker", {}),
                            "enabled": True,
                            "autoscaling": {"minReplicas": 1},
                        },
                    }
                    for service in ("feedback", "tts")
                },
            },
        },
    ):
        docs = _documents(_render(values))
        assert _relays(docs) == {}
        for name, deployment in _kind(docs, "Deployment").items():
            assert "WP_OUTBOX_RELAY" not in _env(_container(deployment)), name


def test_any_service_whose_worker_may_reach_zero_gets_a_relay() -> None:
    """Not a list of names: the chart derives it, e.g. for tts with its worker split off."""
    docs = _documents(
        _render(
            {
                "keda": {"enabled": True},
                "services": {"tts": {"worker": {"enabled": True, "autoscaling": {"minReplicas": 0}}}},
            }
        )
    )
    assert set(_relays(docs)) == {f"{RELEASE}-tts{RELAY_SUFFIX}"}
    assert _env(_container(_kind(docs, "Deployment")[f"{RELEASE}-tts-worker"]))["WP_OUTBOX_RELAY"]["value"] == "false"
    # tts's API runs no workers, hence no relay either: the standalone one publishes what it writes.
    assert "WP_OUTBOX_RELAY" not in _env(_container(_kind(docs, "Deployment")[f"{RELEASE}-tts"]))


def test_relay_values_are_checked_by_the_schema() -> None:
    with pytest.raises(HelmValuesError, match="minAvailable"):
        _render({"outboxRelay": {"pdb": {"enabled": True, "minAvailable": 1}}})
    with pytest.raises(HelmValuesError, match="pollIntervalSeconds"):
        _render({"outboxRelay": {"pollIntervalSeconds": 0}})
    with pytest.raises(HelmValuesError, match="graceSeconds"):
        _render({"outboxRelay": {"shutdown": {"drainSeconds": 0, "graceSeconds": 5}}})
