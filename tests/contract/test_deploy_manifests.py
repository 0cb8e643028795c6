"""Contract tests for deploy/helm/workplace and deploy/keda: no cluster needed.

The chart is rendered offline (helm-python-sdk, Helm v4) with its default values and with
values-production.yaml, then checked against: helm lint --strict, the Kubernetes OpenAPI
schemas (kubernetes-validate --strict), the services' own settings classes (every WP_*
variable must be one they read, with a value they accept), Envoy's config validation and a
short real Envoy run, and the fields KEDA documents for ScaledObject and its scalers. The
Pub/Sub provisioning hook Job is held to the same rules as the services.

The services come from the service registry: the chart reads files/services.yaml (generated
from libs/kit/src/workplace_kit/services.toml by scripts/generate.py), and a test renders a
copy of the chart with an extra, throwaway service to show that a new service needs no change
to the chart's values, schema or templates.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import re
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart, lint
from helm_python.errors import HelmRenderError, HelmValuesError
from support.envoy import on_local_ports, running_envoy, validate
from support.services import free_port
from workplace_kit.registry import REGISTRY_FILE
from workplace_kit.registry import load as load_registry
from workplace_kit.registry import parse as parse_registry

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "workplace"
PRODUCTION_VALUES = CHART_DIR / "values-production.yaml"
LOCAL_ENVOY_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"
KEDA_GENERATOR = REPO / "deploy" / "keda" / "generate.py"
KEDA_PLAIN_MANIFESTS = REPO / "deploy" / "keda" / "workplace-keda.yaml"
REGISTRY_GENERATOR = REPO / "scripts" / "generate.py"
CHART_SERVICE_TABLE = CHART_DIR / "files" / "services.yaml"

RELEASE = "workplace"
NAMESPACE = "workplace"
# GKE's regular channel is around here; kubernetes-validate bundles schemas up to 1.37.
KUBERNETES_VERSION = "1.33.0"

SERVICES = list(load_registry().names)
PROVISION = f"{RELEASE}-pubsub-provision"
PROVISION_COMMAND = ["python", "-m", "workplace_kit.pubsub", "provision"]
PROVISION_GSA = "workplace-pubsub-provision@workplace-prod.iam.gserviceaccount.com"
HOOK = "helm.sh/hook"

# KEDA 2.18 reference (keda.sh/docs/2.18/reference/scaledobject-spec and scalers/*).
KEDA_API_VERSION = "keda.sh/v1alpha1"
# KEDA's published CRDs (tests/contract/data/keda/README.md): every object is checked against
# their openAPIV3Schema as the API server would, beside the documented scaler metadata below.
KEDA_CRDS = Path(__file__).parent / "data" / "keda"
SCALEDOBJECT_SPEC_FIELDS = set(
    "scaleTargetRef pollingInterval cooldownPeriod initialCooldownPeriod idleReplicaCount"
    " minReplicaCount maxReplicaCount fallback advanced triggers".split()
)
SCALE_TARGET_REF_FIELDS = {"apiVersion", "kind", "name", "envSourceContainerName"}
TRIGGER_FIELDS = {"type", "metadata", "name", "useCachedMetrics", "authenticationRef", "metricType"}
AUTHENTICATION_REF_FIELDS = {"name", "kind"}
SCALER_METADATA = {
    "prometheus": {
        "allowed": set(
            "serverAddress query threshold activationThreshold namespace customHeaders ignoreNullValues"
            " queryParameters unsafeSsl timeout authModes".split()
        ),
        "required": {"serverAddress", "query", "threshold"},
    },
}


# --------------------------------------------------------------------------- rendering


# Rendering and parsing are most of the contract tests' time: each set of values is rendered once
# per run (the chart does not change during one; a render that fails is not kept), and libyaml
# parses the manifests.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _render_once(values_json: str) -> tuple[tuple[str, str], ...]:
    rendered = Chart.load(CHART_DIR).render(json.loads(values_json), name=RELEASE, namespace=NAMESPACE)
    return tuple(rendered.items())


def _render(values: dict) -> dict[str, str]:
    return dict(_render_once(json.dumps(values, sort_keys=True)))


def _documents(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d)
    return docs


def _production_values() -> dict:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


VALUE_SETS = {
    "default": lambda: {},
    "production": _production_values,
    "default-keda": lambda: {"keda": {"enabled": True}},
    "keda-single-feedback": lambda: {
        "keda": {"enabled": True},
        "services": {"feedback": {"worker": {"enabled": False}}},
    },
    "no-provision": lambda: {"pubsubProvision": {"enabled": False}},
    # values-production.yaml leaves the Pub/Sub topology to Config Connector: the Job's own
    # checks run with it turned back on over production's other values.
    "production-provision": lambda: {
        **_production_values(),
        "pubsubProvision": {"enabled": True, "gcpServiceAccount": PROVISION_GSA},
    },
}


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict]]:
    return {name: _documents(_render(make())) for name, make in VALUE_SETS.items()}


def _kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _container(deployment: dict) -> dict:
    """The workload's own container: the only one, but for the gateway's drain sidecar."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    names = [c["name"] for c in containers]
    assert len(containers) == 1 or names == ["envoy", "drain"], f"{deployment['metadata']['name']}: {names}"
    return containers[0]


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _load_script(module_name: str, path: Path):
    """Import a repository script by path (registered first: its dataclasses look themselves up)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _pods_selected(docs: list[dict], selector: dict[str, str]) -> list[dict]:
    return [
        d for d in _kind(docs, "Deployment").values() if _selects(selector, d["spec"]["template"]["metadata"]["labels"])
    ]


# --------------------------------------------------------------------------- helm


@pytest.mark.parametrize("value_set", ["default", "production", "default-keda"])
def test_helm_lint_strict_has_no_errors_or_warnings(value_set: str) -> None:
    report = lint(CHART_DIR, VALUE_SETS[value_set](), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_render_covers_every_service_and_the_feedback_worker(renders) -> None:
    names = set(_kind(renders["default"], "Deployment"))
    expected = {f"{RELEASE}-{s}" for s in [*SERVICES, "feedback-worker", "gateway"]}
    assert names == expected
    # Worker mode off: one feedback Deployment does everything.
    assert f"{RELEASE}-feedback-worker" not in _kind(renders["keda-single-feedback"], "Deployment")


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_every_manifest_passes_kubernetes_validate_strict(renders, value_set: str) -> None:
    # Custom resources are checked against their own CRDs (KEDA's, GMP's) further down, and the
    # public edge's (Gateway API, GKE's policies) in test_edge.py.
    # The Secret Manager add-on's SecretProviderClass in test_gemini_keys_chart.py.
    custom = (
        "keda.sh/",
        "monitoring.googleapis.com/",
        "gateway.networking.k8s.io/",
        "networking.gke.io/",
        "secrets-store.csi.x-k8s.io/",
    )
    docs = [d for d in renders[value_set] if not d["apiVersion"].startswith(custom)]
    assert len(docs) >= 40, "suspiciously few manifests rendered"
    # Production leaves the Pub/Sub topology to Config Connector (deploy/cloud/config-connector).
    provisioned = value_set != "production"
    assert (PROVISION in _kind(docs, "Job"), PROVISION in _kind(docs, "ServiceAccount")) == (provisioned, provisioned)
    failures = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert failures == []


def test_kubernetes_validate_would_catch_an_unknown_field(renders) -> None:
    deployment = dict(_kind(renders["default"], "Deployment")[f"{RELEASE}-chat"])
    deployment["spec"] = {**deployment["spec"], "replicaCount": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_values_schema_rejects_bad_values() -> None:
    with pytest.raises(HelmValuesError, match="/services/chat/replicas"):
        _render({"services": {"chat": {"replicas": "two"}}})
    with pytest.raises(HelmValuesError, match="replicaz"):
        _render({"services": {"web": {"replicaz": 2}}})
    with pytest.raises(HelmValuesError, match="minreplicas"):
        _render({"services": {"tts": {"autoscaling": {"minreplicas": 2}}}})
    with pytest.raises(HelmValuesError, match="replicaz"):
        _render({"serviceDefaults": {"worker": {"replicaz": 2}}})
    # What the registry says is not a value: ports, command, secrets, subscriptions.
    for field in [{"ports": {"http": 8100}}, {"command": ["python"]}, {"uses": {"database": True}}]:
        with pytest.raises(HelmValuesError, match="additional properties"):
            _render({"services": {"web": field}})
    with pytest.raises(HelmValuesError, match="pubsubSubscription"):
        _render({"services": {"web": {"autoscaling": {"pubsubSubscription": "web.feedback-ready"}}}})
    # null deletes a default in Helm: services without resource requests are refused.
    with pytest.raises(HelmValuesError, match="missing property 'requests'"):
        _render({"serviceDefaults": {"resources": {"requests": None}}})
    with pytest.raises(HelmValuesError, match="missing property 'memory'"):
        _render({"serviceDefaults": {"worker": {"resources": {"requests": {"memory": None}}}}})


def test_values_for_an_unregistered_service_fail_the_render() -> None:
    """A typo in a service name must not pass silently (the entry would tune nothing)."""
    with pytest.raises(HelmRenderError, match=r"services\.chta names no registered service \(known: auth, chat,"):
        _render({"services": {"chta": {"replicas": 3}}})


def test_a_service_without_values_gets_the_service_defaults(renders) -> None:
    values = Chart.load(CHART_DIR).values
    defaults = values["serviceDefaults"]
    # tts without its entry (null deletes it, as in Helm) runs on the defaults alone.
    bare = _documents(_render({"services": {"tts": None}}))
    deployment = _kind(bare, "Deployment")[f"{RELEASE}-tts"]
    container = _container(deployment)
    assert container["resources"] == defaults["resources"]
    assert container["image"] == f"workplace/tts:{Chart.load(CHART_DIR).metadata['appVersion']}"
    assert container["imagePullPolicy"] == defaults["image"]["pullPolicy"]
    assert container["livenessProbe"] == defaults["probes"]["liveness"]
    hpa = _kind(bare, "HorizontalPodAutoscaler")[f"{RELEASE}-tts"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        defaults["autoscaling"]["minReplicas"],
        defaults["autoscaling"]["maxReplicas"],
    )
    # An entry is merged over the defaults key by key: chat sets its requests, keeps the rest.
    chat = _container(_kind(renders["default"], "Deployment")[f"{RELEASE}-chat"])
    assert chat["livenessProbe"] == defaults["probes"]["liveness"]
    chat_hpa = _kind(renders["default"], "HorizontalPodAutoscaler")[f"{RELEASE}-chat"]["spec"]
    assert chat_hpa["minReplicas"] == values["services"]["chat"]["autoscaling"]["minReplicas"]
    target = chat_hpa["metrics"][0]["resource"]["target"]
    assert target["averageUtilization"] == defaults["autoscaling"]["targetCPUUtilizationPercentage"]


# --------------------------------------------------------------------------- workloads


def _assert_hardened_and_sized(name: str, workload: dict, service_accounts: dict[str, dict]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod.get("serviceAccountName") in service_accounts, name
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["runAsUser"] > 0, name
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
    container = _container(workload)
    requests = container["resources"]["requests"]
    assert requests.get("cpu") and requests.get("memory"), f"{name}: GKE Autopilot needs requests"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False, name
    assert security["readOnlyRootFilesystem"] is True, name
    assert security["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_every_deployment_is_hardened_and_sized(renders, value_set: str) -> None:
    docs = renders[value_set]
    service_accounts = _kind(docs, "ServiceAccount")
    for name, deployment in _kind(docs, "Deployment").items():
        _assert_hardened_and_sized(name, deployment, service_accounts)
        container = _container(deployment)
        assert container["livenessProbe"] and container["readinessProbe"], name


def test_python_services_probe_healthz_and_readyz(renders) -> None:
    for name, deployment in _kind(renders["production"], "Deployment").items():
        if name.endswith(("-gateway", "-otel-collector")):  # not Python (the collector: test_telemetry_pipeline)
            continue
        container = _container(deployment)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_every_service_port_targets_an_existing_container_port(renders, value_set: str) -> None:
    docs = renders[value_set]
    for name, service in _kind(docs, "Service").items():
        backends = _pods_selected(docs, service["spec"]["selector"])
        assert len(backends) == 1, f"Service {name} selects {[d['metadata']['name'] for d in backends]}"
        container_ports = _container(backends[0])["ports"]
        by_name = {p["name"]: p["containerPort"] for p in container_ports}
        numbers = set(by_name.values())
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in by_name or target in numbers, f"Service {name} port {port['name']} -> {target}"


def test_service_accounts_carry_workload_identity(renders) -> None:
    production = _production_values()
    accounts = _kind(renders["production"], "ServiceAccount")
    for service in SERVICES:
        annotations = accounts[f"{RELEASE}-{service}"]["metadata"].get("annotations", {})
        assert (
            annotations.get("iam.gke.io/gcp-service-account")
            == production["services"][service]["serviceAccount"]["gcpServiceAccount"]
        )
    # The feedback worker acts as the feedback service.
    worker = _kind(renders["production"], "Deployment")[f"{RELEASE}-feedback-worker"]
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-feedback"
    # No GCP account configured, no annotation.
    assert "annotations" not in _kind(renders["default"], "ServiceAccount")[f"{RELEASE}-chat"]["metadata"]


def _settings_class(service: str) -> type:
    """The settings class a service's entry point loads: the ServiceSettings subclass in
    <service>_service/settings.py, or ServiceSettings itself for the placeholder services."""
    from workplace_kit.config import ServiceSettings

    try:
        module = importlib.import_module(f"{service}_service.settings")
    except ModuleNotFoundError as exc:
        if exc.name != f"{service}_service.settings":
            raise
        return ServiceSettings
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value is not ServiceSettings
    ]
    assert len(found) == 1, f"{service}_service.settings: expected one ServiceSettings subclass, found {found}"
    return found[0]


def _settings_for(service: str, container: dict, monkeypatch: pytest.MonkeyPatch):
    """Load the service's real settings class from the container's environment."""
    return _settings_from_env(_settings_class(service), service, container, monkeypatch)


def _settings_from_env(cls: type, service: str, container: dict, monkeypatch: pytest.MonkeyPatch):
    """Load settings class `cls` from the container's environment; every WP_* must be a field."""
    import os

    from workplace_kit.config import load_settings

    class_name = cls.__name__
    for var in [v for v in os.environ if v.startswith("WP_")]:
        monkeypatch.delenv(var)
    for var, entry in _env(container).items():
        if var == "WP_SECRETS_DIR":  # what GKE's Secret Manager add-on mounts there: the keys' file
            import tempfile

            mounted = Path(tempfile.mkdtemp(prefix="secrets-"))
            (mounted / "WP_GEMINI_API_KEYS").write_text("key-1\nkey-2\n")
            monkeypatch.setenv(var, str(mounted))
        elif "value" in entry:
            monkeypatch.setenv(var, entry["value"])
        else:  # from a Secret: any well-formed value
            monkeypatch.setenv(var, "postgresql://u:p@db:5432/workplace" if var == "WP_DATABASE_URL" else "key-1,key-2")
        if var.startswith("WP_"):
            field = var.removeprefix("WP_").lower()
            assert field in cls.model_fields, f"{service}: {var} is not a setting of {class_name}"
    return load_settings(cls)


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_env_is_what_each_service_reads(renders, value_set: str, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = renders[value_set]
    services = _kind(docs, "Service")
    for name, deployment in _kind(docs, "Deployment").items():
        workload = name.removeprefix(f"{RELEASE}-")
        if workload in ("gateway", "otel-collector") or workload.endswith("-outbox-relay"):
            continue  # the outbox relays read the kit's settings: test_outbox_relay_chart.py
        service = workload.removesuffix("-worker")
        container = _container(deployment)
        env = _env(container)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        with monkeypatch.context() as patch:
            settings = _settings_for(service, container, patch)
        assert settings.service_name == service
        assert settings.http_host == "0.0.0.0"
        assert settings.http_port == ports["http"]
        if "grpc" in ports:
            assert settings.grpc_port == ports["grpc"]
        uses_database = "WP_DATABASE_URL" in env
        if uses_database:
            database_url = env["WP_DATABASE_URL"]
            if "value" in database_url:  # through the Cloud SQL Auth Proxy, as an IAM user: no password
                assert urllib.parse.urlsplit(database_url["value"]).password is None
            else:
                assert "secretKeyRef" in database_url["valueFrom"], "the database URL holds a password"
        if "WP_GEMINI_API_KEYS" in env:
            ref = env["WP_GEMINI_API_KEYS"]["valueFrom"]["secretKeyRef"]
            assert ref["optional"] is True, "without keys the platform must still start (offline engines)"
        # Tokens are checked against the keys the release's own auth service publishes.
        auth_http = next(p["port"] for p in services[f"{RELEASE}-auth"]["spec"]["ports"] if p["name"] == "http")
        expected_jwks = f"http://{RELEASE}-auth.{NAMESPACE}.svc.cluster.local:{auth_http}/.well-known/jwks.json"
        assert settings.auth_jwks_url == expected_jwks, workload
        has_worker = f"{RELEASE}-{service}-worker" in _kind(docs, "Deployment")
        if workload.endswith("-worker"):
            assert (settings.run_grpc, settings.run_workers) == (False, True)
            assert "grpc" not in ports
        elif has_worker:  # its worker Deployment consumes the events
            assert (settings.run_grpc, settings.run_workers) == (True, False)
        else:
            assert (settings.run_grpc, settings.run_workers) == (True, True)
        if workload == "web":
            for address, target in [
                (settings.web_chat_grpc_addr, "chat"),
                (settings.web_feedback_grpc_addr, "feedback"),
            ]:
                host, port = address.rsplit(":", 1)
                svc = services[f"{RELEASE}-{target}"]
                assert host == f"{RELEASE}-{target}.{NAMESPACE}.svc.cluster.local"
                assert int(port) in {p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc"}


def test_single_feedback_deployment_runs_everything(renders, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = _kind(renders["keda-single-feedback"], "Deployment")[f"{RELEASE}-feedback"]
    settings = _settings_for("feedback", _container(deployment), monkeypatch)
    assert (settings.run_grpc, settings.run_workers) == (True, True)


def test_google_sign_in_values_reach_the_auth_service_only(renders, monkeypatch: pytest.MonkeyPatch) -> None:
    oidc = {
        "clientId": "1234-abc.apps.googleusercontent.com",
        "redirectUrl": "https://roleplay.example.co.jp/api/v2/auth/oidc/callback",
        "allowedDomains": ["example.co.jp", "example.com"],
        "clientSecret": {"secretName": "roleplay-google", "secretKey": "secret"},
    }
    deployments = _kind(_documents(_render({"auth": {"oidc": oidc}})), "Deployment")
    auth = _container(deployments[f"{RELEASE}-auth"])
    ref = _env(auth)["WP_AUTH_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "roleplay-google", "key": "secret"}, "the client secret comes from its Secret only"
    settings = _settings_for("auth", auth, monkeypatch)
    assert settings.oidc_enabled and settings.auth_oidc_client_id == oidc["clientId"]
    assert settings.auth_oidc_issuer == "https://accounts.google.com"
    assert settings.auth_oidc_redirect_url == oidc["redirectUrl"]
    assert settings.auth_oidc_allowed_domains == ["example.co.jp", "example.com"]
    for name, deployment in deployments.items():
        if name != f"{RELEASE}-auth" and "gateway" not in name:
            assert not [v for v in _env(_container(deployment)) if v.startswith("WP_AUTH_OIDC_")], name
    # Default values: off, and nothing rendered.
    for value_set in ("default", "production"):
        default_auth = _container(_kind(renders[value_set], "Deployment")[f"{RELEASE}-auth"])
        assert not [v for v in _env(default_auth) if v.startswith("WP_AUTH_OIDC_")], value_set
    with pytest.raises(HelmValuesError, match="redirectUrl"):
        _render({"auth": {"oidc": {"clientId": "1234-abc.apps.googleusercontent.com"}}})
    with pytest.raises(HelmValuesError, match="allowedDomains"):
        _render({"auth": {"oidc": {"allowedDomains": ["Example Corp"]}}})


def test_google_sign_in_values_make_web_offer_it(renders, monkeypatch: pytest.MonkeyPatch) -> None:
    """The account page shows "Sign in with Google" exactly where auth has it enabled."""
    oidc = {
        "clientId": "1234-abc.apps.googleusercontent.com",
        "redirectUrl": "https://roleplay.example.co.jp/api/v2/auth/oidc/callback",
    }
    web = _container(_kind(_documents(_render({"auth": {"oidc": oidc}})), "Deployment")[f"{RELEASE}-web"])
    assert _settings_for("web", web, monkeypatch).web_google_sign_in_enabled is True
    for value_set in ("default", "production"):
        default_web = _container(_kind(renders[value_set], "Deployment")[f"{RELEASE}-web"])
        assert "WP_WEB_GOOGLE_SIGN_IN_ENABLED" not in _env(default_web), value_set
        assert _settings_for("web", default_web, monkeypatch).web_google_sign_in_enabled is False, value_set


def test_default_ports_match_the_local_runtime(renders) -> None:
    localrt = _load_script("localrt_for_deploy_tests", REPO / "scripts" / "localrt.py")
    deployments = _kind(renders["default"], "Deployment")
    for spec in localrt.SERVICES:
        service, http_port, grpc_port = spec.name, spec.http_port, spec.grpc_port
        ports = {p["name"]: p["containerPort"] for p in _container(deployments[f"{RELEASE}-{service}"])["ports"]}
        assert ports == ({"http": http_port} | ({"grpc": grpc_port} if grpc_port else {})), service


def test_services_are_what_the_registry_says(renders) -> None:
    """Command, ports and secrets of every service come from the registry, nowhere else."""
    table = yaml.safe_load(CHART_SERVICE_TABLE.read_text())["services"]
    assert list(table) == SERVICES, "files/services.yaml is stale: run `task generate`"
    for value_set in ["default", "production"]:
        deployments = _kind(renders[value_set], "Deployment")
        services = _kind(renders[value_set], "Service")
        for entry in load_registry().services:
            container = _container(deployments[f"{RELEASE}-{entry.name}"])
            env = _env(container)
            assert container["name"] == entry.name
            assert container["command"] == ["python", "-m", entry.module], entry.name
            expected = {"http": entry.http_port} | ({"grpc": entry.grpc_port} if entry.grpc_port else {})
            assert {p["name"]: p["containerPort"] for p in container["ports"]} == expected, entry.name
            assert {p["name"]: p["port"] for p in services[f"{RELEASE}-{entry.name}"]["spec"]["ports"]} == expected
            assert ("WP_DATABASE_URL" in env) == entry.database, entry.name
            # The keys from a Secret, or (production) Secret Manager's file in WP_SECRETS_DIR.
            assert ("WP_GEMINI_API_KEYS" in env or "WP_SECRETS_DIR" in env) == entry.gemini, entry.name


# --------------------------------------------------------------------------- network policies


def test_network_policies_deny_by_default_and_allow_the_known_paths(renders) -> None:
    docs = renders["production"]
    policies = _kind(docs, "NetworkPolicy")
    deny = policies[f"{RELEASE}-default-deny-ingress"]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and not deny["spec"].get("ingress")
    for deployment in _kind(docs, "Deployment").values():
        assert _selects(
            deny["spec"]["podSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
        )

    def allowed_from(workload: str, source: str) -> set[str]:
        """Ports of `workload` a pod of component `source` may reach: rules naming that
        component, or every pod of the release (a selector without a component)."""
        ports: set[str] = set()
        for rule in policies[f"{RELEASE}-{workload}"]["spec"]["ingress"]:
            for peer in rule.get("from", []):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                component = labels.get("app.kubernetes.io/component")
                if "namespaceSelector" not in peer and component in (source, None):
                    ports |= {p["port"] for p in rule["ports"]}
        return ports

    registry = load_registry()
    for service in SERVICES:
        expected = {"http"} if registry.get(service).grpc_port is None else {"http", "grpc"}
        assert allowed_from(service, "gateway") == expected, service
    assert allowed_from("chat", "web") == {"grpc"}
    assert allowed_from("feedback", "web") == {"grpc"}
    for service in ["scenario", "watch", "tts"]:
        assert allowed_from(service, "web") == set(), f"web has no business calling {service}"
    # Every workload fetches auth's public keys (JWKS) over HTTP, and nothing else of auth.
    for source in [*SERVICES, "feedback-worker"]:
        assert allowed_from("auth", source) == {"http"} | ({"grpc"} if source == "gateway" else set()), source
    assert allowed_from("feedback-worker", "gateway") == set()

    # Every named port a policy opens exists on the pods it selects; Prometheus may scrape each.
    for name, policy in policies.items():
        if name.endswith("default-deny-ingress"):
            continue
        pods = _pods_selected(docs, policy["spec"]["podSelector"]["matchLabels"])
        assert len(pods) == 1, name
        port_names = {p["name"] for p in _container(pods[0])["ports"]}
        rules = policy["spec"]["ingress"]
        for rule in rules:
            assert {p["port"] for p in rule["ports"]} <= port_names, name
        assert any("namespaceSelector" in peer for rule in rules for peer in rule.get("from", [])), (
            f"{name}: no Prometheus scrape rule"
        )


# --------------------------------------------------------------------------- Pub/Sub provisioning job


def _hook(obj: dict) -> tuple[set[str], int, set[str]]:
    """Hook events, weight and delete policies of a Helm hook object."""
    annotations = obj["metadata"].get("annotations", {})
    return (
        set(annotations[HOOK].split(",")),
        int(annotations.get("helm.sh/hook-weight", "0")),
        set(annotations.get("helm.sh/hook-delete-policy", "").split(",")),
    )


@pytest.mark.parametrize("value_set", ["default", "production-provision"])
def test_pubsub_provision_job_is_a_hook_that_runs_before_the_workloads(renders, value_set: str) -> None:
    docs = renders[value_set]
    job = _kind(docs, "Job")[PROVISION]
    account = _kind(docs, "ServiceAccount")[PROVISION]
    events, job_weight, deletion = _hook(job)
    assert events == {"pre-install", "pre-upgrade"}
    assert deletion == {"before-hook-creation", "hook-succeeded"}
    # Hook objects are created before the release's other objects, lowest weight first: the
    # account the Job runs under must exist before it, so it is a hook too, and weighs less.
    account_events, account_weight, account_deletion = _hook(account)
    assert account_events == events and account_deletion == deletion
    assert account_weight < job_weight
    hooks = {(d["kind"], d["metadata"]["name"]) for d in docs if HOOK in d["metadata"].get("annotations", {})}
    # Besides it, only the migrations Jobs and their account (production), never a workload.
    migrations = {(k, n) for k, n in hooks if n.endswith("-migrations")}
    assert hooks - migrations == {("Job", PROVISION), ("ServiceAccount", PROVISION)}, "the workloads must not be hooks"
    assert not migrations or ("ServiceAccount", f"{RELEASE}-migrations") in migrations

    spec = job["spec"]
    values = VALUE_SETS[value_set]()
    defaults = Chart.load(CHART_DIR).values["pubsubProvision"]
    assert spec["backoffLimit"] == defaults["backoffLimit"] and 1 <= spec["backoffLimit"] <= 5
    assert spec["activeDeadlineSeconds"] == defaults["activeDeadlineSeconds"] == 300
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = _container(job)
    assert container["command"] == PROVISION_COMMAND
    # A configuration error (exit code 2) fails the Job at once instead of retrying.
    (rule,) = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {"containerName": container["name"], "operator": "In", "values": [2]}
    # By default it runs the feedback image: every service image carries the kit.
    feedback = _container(_kind(docs, "Deployment")[f"{RELEASE}-feedback"])
    assert (container["image"], container["imagePullPolicy"]) == (feedback["image"], feedback["imagePullPolicy"])
    if value_set == "production-provision":
        assert container["image"].startswith(values["global"]["imageRegistry"] + "/feedback:")


def test_pubsub_provision_command_is_the_kit_cli() -> None:
    from workplace_kit import pubsub

    assert PROVISION_COMMAND[:3] == ["python", "-m", pubsub.__name__]
    with pytest.raises(SystemExit) as exited:
        pubsub.main([*PROVISION_COMMAND[3:], "--help"])
    assert exited.value.code == 0


def test_pubsub_provision_image_can_be_overridden() -> None:
    docs = _documents(
        _render(
            {
                "global": {"imageRegistry": "europe-docker.pkg.dev/p/workplace"},
                "pubsubProvision": {"image": {"repository": "kit", "tag": "1.2.3", "pullPolicy": "Always"}},
            }
        )
    )
    container = _container(_kind(docs, "Job")[PROVISION])
    assert container["image"] == "europe-docker.pkg.dev/p/workplace/kit:1.2.3"
    assert container["imagePullPolicy"] == "Always"


def test_pubsub_provision_job_runs_as_its_own_workload_identity(renders) -> None:
    production = VALUE_SETS["production-provision"]()
    docs = renders["production-provision"]
    accounts = _kind(docs, "ServiceAccount")
    pod = _kind(docs, "Job")[PROVISION]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == PROVISION
    gsa = production["pubsubProvision"]["gcpServiceAccount"]
    assert accounts[PROVISION]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == gsa
    # Not a service's account: the services' own need no right to create topics.
    assert gsa not in {production["services"][s]["serviceAccount"]["gcpServiceAccount"] for s in SERVICES}
    # Workload Identity needs no token in the pod (the GKE metadata server gets one), like the services.
    assert pod["automountServiceAccountToken"] is False
    assert accounts[PROVISION]["automountServiceAccountToken"] is False
    # No GCP account configured, no annotation.
    default_account = _kind(renders["default"], "ServiceAccount")[PROVISION]
    assert "iam.gke.io/gcp-service-account" not in default_account["metadata"]["annotations"]
    # Accounts made elsewhere: the Job still runs under the same name, and no hook account is made.
    external = _documents(_render({"serviceAccount": {"create": False}}))
    assert _kind(external, "ServiceAccount") == {}
    assert _kind(external, "Job")[PROVISION]["spec"]["template"]["spec"]["serviceAccountName"] == PROVISION


@pytest.mark.parametrize("value_set", ["default", "production-provision"])
def test_pubsub_provision_job_is_hardened_and_small(renders, value_set: str) -> None:
    docs = renders[value_set]
    job = _kind(docs, "Job")[PROVISION]
    _assert_hardened_and_sized(PROVISION, job, _kind(docs, "ServiceAccount"))
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    # Exactly what the services run with.
    service = _kind(docs, "Deployment")[f"{RELEASE}-feedback"]
    assert pod["securityContext"] == service["spec"]["template"]["spec"]["securityContext"]
    container = _container(job)
    assert container["securityContext"] == _container(service)["securityContext"]
    assert container["securityContext"]["privileged"] is False
    # Read-only root filesystem: scratch space on a /tmp volume.
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    assert "emptyDir" in pod["volumes"][0]
    resources = container["resources"]
    for kind in ["requests", "limits"]:
        assert set(resources[kind]) == {"cpu", "memory"}, kind
    assert resources["limits"]["memory"] in {"256Mi", "512Mi"}, "a one-shot admin call needs little"
    assert "ports" not in container and "livenessProbe" not in container


@pytest.mark.parametrize("value_set", ["default", "production-provision"])
def test_pubsub_provision_env_is_what_the_kit_cli_reads(renders, value_set: str, monkeypatch) -> None:
    from workplace_kit.pubsub import _Settings

    docs = renders[value_set]
    container = _container(_kind(docs, "Job")[PROVISION])
    env = _env(container)
    settings = _settings_from_env(_Settings, "pubsub-provision", container, monkeypatch)
    # The same project, environment and log level as the services it provisions for.
    worker_env = _env(_container(_kind(docs, "Deployment")[f"{RELEASE}-feedback-worker"]))
    for var in ["WP_PUBSUB_PROJECT", "WP_ENVIRONMENT", "WP_LOG_LEVEL", "HOME", "TMPDIR"]:
        assert env[var] == worker_env[var], var
    values = VALUE_SETS[value_set]() if value_set != "default" else Chart.load(CHART_DIR).values
    assert settings.pubsub_project == values["global"]["pubsubProject"]
    assert settings.environment == values["global"]["environment"]
    assert settings.pubsub_name_suffix == ""
    # It reads no secret and serves nothing.
    assert all("valueFrom" not in e for e in env.values())
    assert not {"WP_DATABASE_URL", "WP_GEMINI_API_KEYS", "WP_HTTP_PORT", "WP_GRPC_PORT"} & set(env)


def test_pubsub_provision_extra_env_reaches_the_cli(monkeypatch) -> None:
    from workplace_kit.pubsub import _Settings

    docs = _documents(_render({"pubsubProvision": {"env": {"WP_PUBSUB_NAME_SUFFIX": ".blue"}}}))
    container = _container(_kind(docs, "Job")[PROVISION])
    assert _settings_from_env(_Settings, "pubsub-provision", container, monkeypatch).pubsub_name_suffix == ".blue"


def test_pubsub_provision_can_be_turned_off(renders) -> None:
    docs = renders["no-provision"]
    assert _kind(docs, "Job") == {}
    assert PROVISION not in _kind(docs, "ServiceAccount")
    assert not [d for d in docs if HOOK in d["metadata"].get("annotations", {})]
    # Everything else is as before.
    names = lambda ds: {(d["kind"], d["metadata"]["name"]) for d in ds}  # noqa: E731
    assert names(renders["default"]) - names(docs) == {("Job", PROVISION), ("ServiceAccount", PROVISION)}


def test_pubsub_provision_pod_is_denied_ingress_and_may_reach_google(renders) -> None:
    docs = renders["production-provision"]
    labels = _kind(docs, "Job")[PROVISION]["spec"]["template"]["metadata"]["labels"]
    selecting = [
        p for p in _kind(docs, "NetworkPolicy").values() if _selects(p["spec"]["podSelector"]["matchLabels"], labels)
    ]
    assert [p["metadata"]["name"] for p in selecting] == [f"{RELEASE}-default-deny-ingress"]
    # No policy restricts egress: Pub/Sub's API and the GKE metadata server (Workload Identity)
    # are reachable. A policy with Egress here must allow them.
    assert all("Egress" not in p["spec"]["policyTypes"] for p in selecting)
    # It shares no component label with a service, so no service's ingress rule or PDB covers it.
    assert labels["app.kubernetes.io/component"] == "pubsub-provision"
    for pdb in _kind(docs, "PodDisruptionBudget").values():
        assert not _selects(pdb["spec"]["selector"]["matchLabels"], labels), pdb["metadata"]["name"]


def test_values_schema_rejects_bad_pubsub_provision_values() -> None:
    with pytest.raises(HelmValuesError, match="backofflimit"):
        _render({"pubsubProvision": {"backofflimit": 3}})
    with pytest.raises(HelmValuesError, match="gcpServiceAccount"):
        _render({"pubsubProvision": {"gcpServiceAccount": "not-an-account"}})
    with pytest.raises(HelmValuesError, match="missing property 'requests'"):
        _render({"pubsubProvision": {"resources": {"requests": None}}})


# --------------------------------------------------------------------------- gateway (Envoy)


def _rendered_envoy_config(docs: list[dict]) -> dict:
    config_map = _kind(docs, "ConfigMap")[f"{RELEASE}-gateway"]
    return yaml.safe_load(config_map["data"]["envoy.yaml"])


@pytest.mark.parametrize("value_set", ["default", "production"])
def test_rendered_envoy_config_passes_envoy_validate(renders, value_set: str, tmp_path: Path) -> None:
    result = validate(_rendered_envoy_config(renders[value_set]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_gateway_routes_are_the_local_routes_with_cluster_addresses(renders) -> None:
    docs = renders["production"]
    rendered = _rendered_envoy_config(docs)
    local = yaml.safe_load(LOCAL_ENVOY_CONFIG.read_text())
    local_listener = local["static_resources"]["listeners"][0]
    listeners = {item["name"]: item for item in rendered["static_resources"]["listeners"]}
    gateway = listeners[local_listener["name"]]
    # Same HTTP connection manager: routes, timeouts, security headers, filters; in the cluster
    # with an access log (stdout, Cloud Logging's structured httpRequest).
    manager = gateway["filter_chains"][0]["filters"][0]["typed_config"]
    access_log = manager.pop("access_log")
    manager.pop("tracing", None)  # to the OpenTelemetry Collector: tests/contract/test_telemetry_pipeline.py
    manager.pop("xff_num_trusted_hops", None)  # behind the edge: tests/contract/test_gateway_client_address.py
    # The token check's issuer and audience come from values: tests/contract/test_gateway_tokens.py.
    local_jwt = next(
        f
        for f in local_listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.jwt_authn"
    )["typed_config"]["providers"]["workplace"]
    jwt = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
    jwt["typed_config"]["providers"]["workplace"].update(issuer=local_jwt["issuer"], audiences=local_jwt["audiences"])
    assert gateway["filter_chains"] == local_listener["filter_chains"]
    assert [a["name"] for a in access_log] == ["envoy.access_loggers.stdout"]
    assert set(access_log[0]["typed_config"]["log_format"]["json_format"]["httpRequest"]) >= {
        "requestMethod", "requestUrl", "status", "latency",
    }  # fmt: skip
    gateway_container = _container(_kind(docs, "Deployment")[f"{RELEASE}-gateway"])
    container_ports = {p["name"]: p["containerPort"] for p in gateway_container["ports"]}
    assert gateway["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": container_ports["http"]}
    assert rendered["admin"] == local["admin"], "admin must stay on 127.0.0.1"

    services = _kind(docs, "Service")
    clusters = {c["name"]: c for c in rendered["static_resources"]["clusters"]}
    for cluster in local["static_resources"]["clusters"]:
        name = cluster["name"]
        if name == "legacy":
            continue  # the legacy app's address comes from values: tests/contract/test_canary_chart.py
        service, port_name = name.split("_")
        ours = clusters[name]
        socket_address = ours["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ]
        assert socket_address["address"] == f"{RELEASE}-{service}.{NAMESPACE}.svc.cluster.local", name
        service_ports = {p["name"]: p["port"] for p in services[f"{RELEASE}-{service}"]["spec"]["ports"]}
        assert socket_address["port_value"] == service_ports[port_name], name
        # Each pod a host (headless Services): one that cannot be reached is ejected a while;
        # 5xx answers are not counted (a dependency outage looks the same on every pod).
        assert services[f"{RELEASE}-{service}"]["spec"]["clusterIP"] == "None", name
        outliers = ours["outlier_detection"]
        assert outliers["split_external_local_origin_errors"] and outliers["enforcing_consecutive_5xx"] == 0, name
        strip = lambda c: {k: v for k, v in c.items() if k not in ("load_assignment", "outlier_detection")}  # noqa: E731
        assert strip(ours) == strip(cluster), f"{name}: only the address and outlier detection may differ"

    health = listeners["health"]
    assert health["address"]["socket_address"]["port_value"] == container_ports["metrics"]
    assert gateway_container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}


def test_gateway_health_listener_answers_ready_and_metrics(tmp_path: Path) -> None:
    """Run the rendered config for real: the kubelet's /ready and Prometheus' scrape work."""
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    docs = _documents(_render({"gateway": {"ports": {"http": http_port, "metrics": metrics_port}}}))
    config = _rendered_envoy_config(docs)
    # Local copies only: the admin port of this machine's own gateway may be taken.
    on_local_ports(config, admin_port)
    with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{metrics_port}/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/stats/prometheus", timeout=2) as response:
            body = response.read().decode()
        assert "envoy_cluster_upstream_cx_total" in body
        # The admin interface itself is not reachable through the health listener.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/quitquitquit", timeout=2)
        assert refused.value.code == 404


# --------------------------------------------------------------------------- KEDA


def _scaled_objects(docs: list[dict]) -> dict[str, dict]:
    return _kind(docs, "ScaledObject")


@pytest.mark.parametrize("value_set", ["production", "default-keda", "keda-single-feedback"])
def test_scaled_objects_use_documented_fields_and_existing_targets(renders, value_set: str) -> None:
    docs = renders[value_set]
    deployments = _kind(docs, "Deployment")
    auths = _kind(docs, "TriggerAuthentication")
    scaled = _scaled_objects(docs)
    assert scaled, "keda.enabled rendered no ScaledObject"
    for name, obj in scaled.items():
        assert obj["apiVersion"] == KEDA_API_VERSION
        spec = obj["spec"]
        assert set(spec) <= SCALEDOBJECT_SPEC_FIELDS, f"{name}: {set(spec) - SCALEDOBJECT_SPEC_FIELDS}"
        assert set(spec["scaleTargetRef"]) <= SCALE_TARGET_REF_FIELDS, name
        target = deployments.get(spec["scaleTargetRef"]["name"])
        assert target is not None, f"{name} scales a Deployment the chart does not render"
        assert "replicas" not in target["spec"], f"{name}: the chart would fight KEDA over replicas"
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        if spec["minReplicaCount"] == 0:
            # Only a workload that answers no request; its events: test_outbox_relay_chart.py.
            assert all(t["name"] != "requests" for t in spec["triggers"]), f"{name}: nothing would answer at zero"
        assert spec["triggers"], name
        for trigger in spec["triggers"]:
            assert set(trigger) <= TRIGGER_FIELDS, f"{name}: {set(trigger) - TRIGGER_FIELDS}"
            scaler = SCALER_METADATA[trigger["type"]]
            metadata = trigger["metadata"]
            assert set(metadata) <= scaler["allowed"], f"{name}: {set(metadata) - scaler['allowed']}"
            assert scaler["required"] <= set(metadata), f"{name}: missing {scaler['required'] - set(metadata)}"
            # The CRD types metadata as map[string]string: a bare number is rejected by the API server.
            assert all(isinstance(v, str) for v in metadata.values()), f"{name}: {metadata}"
            if "authenticationRef" in trigger:
                ref = trigger["authenticationRef"]
                assert set(ref) <= AUTHENTICATION_REF_FIELDS, name
                assert ref["name"] in auths, f"{name}: no TriggerAuthentication {ref['name']}"
            assert trigger["type"] == "prometheus", f"{name}: {trigger['type']}"
            assert float(metadata["threshold"]) > 0
            # A lost metric is an error (held by the fallback), never read as zero.
            assert metadata["ignoreNullValues"] == "false" and "vector(0)" not in metadata["query"], name
            query = metadata["query"]
            assert query.count("(") == query.count(")") and query.count("{") == query.count("}")
            if trigger["name"] == "requests":
                # The query must select the target's own pods.
                assert query == (
                    f'sum(requests_in_flight{{namespace="{NAMESPACE}",container="{_container(target)["name"]}"}})'
                ), name
            else:
                assert trigger["name"].startswith("backlog"), name
                assert re.fullmatch(
                    r"sum\(pubsub_googleapis_com:subscription_num_undelivered_messages\{monitored_resource="
                    r'"pubsub_subscription",project_id="[a-z][-a-z0-9]+",subscription_id="[\w.~+%-]+"\}\)',
                    query,
                ), query
                assert re.fullmatch(
                    r"https://monitoring\.googleapis\.com/v1/projects/[a-z][-a-z0-9]+/location/global/prometheus",
                    metadata["serverAddress"],
                )
                assert "authenticationRef" in trigger, f"{name}: Cloud Monitoring needs KEDA's GCP identity"
        assert spec["fallback"]["replicas"] >= spec["minReplicaCount"], name
        assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["policies"], name
    for name, auth in auths.items():
        assert auth["apiVersion"] == KEDA_API_VERSION
        assert auth["spec"] == {"podIdentity": {"provider": "gcp"}}, name
    # KEDA creates the HPAs: none of our own beside them.
    assert _kind(docs, "HorizontalPodAutoscaler") == {}


_SUBSCRIPTION_IN_QUERY = re.compile(r'subscription_id="([^"]+)"')


def _signals(scaled: dict[str, dict], workload: str) -> tuple[bool, set[str]]:
    """(whether the workload scales on requests in flight, the subscriptions whose backlog it scales on)."""
    triggers = scaled[f"{RELEASE}-{workload}"]["spec"]["triggers"]
    names = [t["name"] for t in triggers]
    assert len(names) == len(set(names)), f"{workload}: trigger names must be unique within a ScaledObject"
    backlog = set()
    for trigger in triggers:
        if trigger["name"].startswith("backlog"):
            found = _SUBSCRIPTION_IN_QUERY.search(trigger["metadata"]["query"])
            assert found, trigger
            backlog.add(found.group(1))
    return "requests" in names, backlog


def test_scaled_objects_scale_on_the_right_signals(renders) -> None:
    scaled = _scaled_objects(renders["production"])
    assert set(scaled) == {f"{RELEASE}-{w}" for w in [*SERVICES, "feedback-worker", "tts-worker"]}
    # The worker scales on the backlog of each subscription it reads: turns and ended sessions.
    assert _signals(scaled, "feedback-worker") == (False, {"feedback.conversation-turns", "feedback.session-ended"})
    # Production's tts worker makes the speech asked for ahead of time; its API pods only answer.
    assert _signals(scaled, "tts-worker") == (False, {"tts.requests"})
    assert scaled[f"{RELEASE}-tts-worker"]["spec"]["minReplicaCount"] == 0
    assert _signals(scaled, "web") == (True, {"web.feedback-ready"})
    # Chat also consumes the legacy app's histories (a migration's backlog).
    assert _signals(scaled, "chat") == (True, {"chat.legacy-chat-histories"})
    # The watch workers scale on the turns waiting to be generated (and the audio-ready notices),
    # tts on the synthesis requests sent ahead of time.
    assert _signals(scaled, "watch") == (True, {"watch.turn-requests", "watch.tts-ready"})
    assert _signals(_scaled_objects(renders["default-keda"]), "tts") == (True, {"tts.requests"})
    for service in ["feedback", "auth", "scenario", "tts"]:
        assert _signals(scaled, service) == (True, set()), service
    assert _signals(_scaled_objects(renders["keda-single-feedback"]), "feedback") == (
        True,
        {"feedback.conversation-turns", "feedback.session-ended"},
    ), "one feedback Deployment must scale on its backlog too"


@pytest.mark.parametrize("value_set", ["production", "default-keda", "keda-single-feedback"])
def test_keda_objects_validate_against_kedas_published_crds(renders, value_set: str) -> None:
    schemas = {}
    for kind, file in (
        ("ScaledObject", "keda.sh_scaledobjects.yaml"),
        ("TriggerAuthentication", "keda.sh_triggerauthentications.yaml"),
    ):
        crd = yaml.safe_load((KEDA_CRDS / file).read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
        schemas[kind] = version["schema"]["openAPIV3Schema"]
    checked = 0
    for doc in renders[value_set]:
        if doc["apiVersion"].startswith("keda.sh/"):
            errors = [e.message for e in jsonschema.Draft7Validator(schemas[doc["kind"]]).iter_errors(doc)]
            assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"
            checked += 1
    assert checked > 5
    # The schema is real: a wrong field type is refused.
    broken = {**_scaled_objects(renders[value_set])[f"{RELEASE}-chat"]}
    broken["spec"] = {**broken["spec"], "fallback": {"failureThreshold": "three", "replicas": 2}}
    assert list(jsonschema.Draft7Validator(schemas["ScaledObject"]).iter_errors(broken))


def test_without_keda_the_chart_renders_cpu_autoscalers(renders) -> None:
    docs = renders["default"]
    hpas = _kind(docs, "HorizontalPodAutoscaler")
    deployments = _kind(docs, "Deployment")
    assert _scaled_objects(docs) == {}
    assert set(hpas) == {f"{RELEASE}-{w}" for w in [*SERVICES, "feedback-worker"]}
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert "replicas" not in deployments[name]["spec"]
    assert deployments[f"{RELEASE}-gateway"]["spec"]["replicas"] >= 1


def test_plain_keda_manifests_match_the_chart() -> None:
    generator = _load_script("keda_generate_for_deploy_tests", KEDA_GENERATOR)
    assert KEDA_PLAIN_MANIFESTS.read_text() == generator.render_text(), (
        "deploy/keda/workplace-keda.yaml is stale: run `uv run --frozen python deploy/keda/generate.py`"
    )
    plain = [d for d in yaml.safe_load_all(KEDA_PLAIN_MANIFESTS.read_text()) if d]
    assert {d["kind"] for d in plain} == {"ScaledObject", "TriggerAuthentication"}
    assert all(d["metadata"]["namespace"] == NAMESPACE for d in plain)


# --------------------------------------------------------------------------- a new service

QUIZ = """
[services.quiz]
description = "a throwaway service: the chart has never heard of it"
http_port = 8199
grpc_port = 50199
grpc_service = "workplace.quiz.v1.QuizService"
public_rpcs = ["Ask"]
database = true
routes = [{ path_prefix = "/api/v2/quiz", timeout = "30s" }]
"""


def _chart_with_quiz(tmp_path: Path, subscriptions: list[str] | None = None) -> Path:
    """A copy of the chart whose generated files (files/services.yaml, files/envoy.yaml) come
    from the registry plus QUIZ, as `task generate` would write them; values, schema and
    templates are the chart's own. `subscriptions`: Pub/Sub subscriptions quiz consumes."""
    generate = _load_script("generate_for_deploy_tests", REGISTRY_GENERATOR)
    registry = parse_registry(REGISTRY_FILE.read_text() + QUIZ)
    chart = tmp_path / "workplace"
    # symlinks=False: files/envoy.yaml becomes a copy, so writing it below leaves deploy/envoy alone.
    shutil.copytree(CHART_DIR, chart, symlinks=False)
    envoy_file, table_file = chart / "files" / "envoy.yaml", chart / "files" / "services.yaml"
    assert not envoy_file.is_symlink() and not table_file.is_symlink()
    envoy_file.write_text(generate.envoy(registry))
    table = generate.helm_services(registry)
    if subscriptions:
        data = yaml.safe_load(table)
        data["services"]["quiz"]["subscriptions"] = subscriptions
        table = yaml.safe_dump(data, sort_keys=False)
    table_file.write_text(table)
    for unchanged in ["values.yaml", "values-production.yaml", "values.schema.json", "templates"]:
        if (CHART_DIR / unchanged).is_dir():
            for template in (CHART_DIR / unchanged).iterdir():
                assert (chart / unchanged / template.name).read_text() == template.read_text(), template.name
        else:
            assert (chart / unchanged).read_text() == (CHART_DIR / unchanged).read_text(), unchanged
    return chart


def _render_chart(chart: Path, values: dict) -> list[dict]:
    return _documents(Chart.load(chart).render(values, name=RELEASE, namespace=NAMESPACE))


def test_a_new_service_is_one_registry_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart = _chart_with_quiz(tmp_path)
    name = f"{RELEASE}-quiz"
    for value_set in ["default", "production"]:
        report = lint(chart, VALUE_SETS[value_set](), strict=True, namespace=NAMESPACE)
        assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == [], report
    docs = _render_chart(chart, {})

    container = _container(_kind(docs, "Deployment")[name])
    assert container["command"] == ["python", "-m", "quiz_service"]
    assert container["image"] == f"workplace/quiz:{Chart.load(chart).metadata['appVersion']}"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8199, "grpc": 50199}
    env = _env(container)
    assert env["WP_SERVICE_NAME"]["value"] == "quiz"
    assert "secretKeyRef" in env["WP_DATABASE_URL"]["valueFrom"] and "WP_GEMINI_API_KEYS" not in env
    from workplace_kit.config import ServiceSettings

    with monkeypatch.context() as patch:
        settings = _settings_from_env(ServiceSettings, "quiz", container, patch)
    assert (settings.http_port, settings.grpc_port) == (8199, 50199)
    service = _kind(docs, "Service")[name]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": 8199, "grpc": 50199}
    assert name in _kind(docs, "ServiceAccount")
    assert name in _kind(docs, "PodDisruptionBudget")
    assert _kind(docs, "HorizontalPodAutoscaler")[name]["spec"]["scaleTargetRef"]["name"] == name
    policy = _kind(docs, "NetworkPolicy")[name]
    from_gateway = [
        {p["port"] for p in rule["ports"]}
        for rule in policy["spec"]["ingress"]
        for peer in rule.get("from", [])
        if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "gateway"
    ]
    assert from_gateway == [{"http", "grpc"}]
    failures = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert failures == []

    # The gateway routes to it, at its Service's address and ports.
    config = _rendered_envoy_config(docs)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for cluster, port in [("quiz_http", 8199), ("quiz_grpc", 50199)]:
        endpoint = clusters[cluster]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert endpoint["address"]["socket_address"] == {
            "address": f"{name}.{NAMESPACE}.svc.cluster.local",
            "port_value": port,
        }
    assert "http2_protocol_options" in str(clusters["quiz_grpc"]) and "http2" not in str(clusters["quiz_http"])
    gateway = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {
        r["route"]["cluster"]: r["match"]
        for r in gateway["route_config"]["virtual_hosts"][0]["routes"]
        if "cluster" in r.get("route", {})  # not the pages' split with the legacy app
    }
    assert routes["quiz_http"] == {"path_separated_prefix": "/api/v2/quiz"}
    assert routes["quiz_grpc"] == {"path": "/workplace.quiz.v1.QuizService/Ask", "grpc": {}}
    result = validate(config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    # With KEDA: a ScaledObject on its request rate (it consumes nothing).
    keda = _render_chart(chart, VALUE_SETS["default-keda"]())
    assert _signals(_scaled_objects(keda), "quiz") == (True, set())
    assert name not in _kind(keda, "HorizontalPodAutoscaler")

    # Values for it are welcome once it is registered, and merged over serviceDefaults.
    tuned = _render_chart(chart, {"services": {"quiz": {"replicas": 3, "autoscaling": {"enabled": False}}}})
    deployment = _kind(tuned, "Deployment")[name]
    assert deployment["spec"]["replicas"] == 3
    assert _container(deployment)["resources"] == Chart.load(chart).values["serviceDefaults"]["resources"]
    assert name not in _kind(tuned, "HorizontalPodAutoscaler")
    # ... and refused by the real chart, which does not know it.
    with pytest.raises(HelmRenderError, match="services.quiz names no registered service"):
        _render({"services": {"quiz": {"replicas": 3}}})


def test_a_new_consumer_scales_on_each_subscription_and_can_have_a_worker(tmp_path: Path) -> None:
    chart = _chart_with_quiz(tmp_path, subscriptions=["quiz.answers", "quiz.turns"])
    expected = {"quiz.answers", "quiz.turns"}
    one = _scaled_objects(_render_chart(chart, VALUE_SETS["default-keda"]()))
    assert _signals(one, "quiz") == (True, expected)

    docs = _render_chart(chart, {"keda": {"enabled": True}, "services": {"quiz": {"worker": {"enabled": True}}}})
    scaled = _scaled_objects(docs)
    assert _signals(scaled, "quiz") == (True, set()), "the API half consumes nothing"
    assert _signals(scaled, "quiz-worker") == (False, expected)
    deployments = _kind(docs, "Deployment")
    worker = _container(deployments[f"{RELEASE}-quiz-worker"])
    assert worker["command"] == ["python", "-m", "quiz_service"]
    assert [p["name"] for p in worker["ports"]] == ["http"]
    env = _env(worker)
    assert (env["WP_RUN_GRPC"]["value"], env["WP_RUN_WORKERS"]["value"]) == ("false", "true")
    assert _env(_container(deployments[f"{RELEASE}-quiz"]))["WP_RUN_WORKERS"]["value"] == "false"
    assert f"{RELEASE}-quiz-worker" not in _kind(docs, "Service")


def test_a_service_image_is_pulled_by_its_digest_when_one_is_given() -> None:
    digest = "sha256:" + "ab" * 32
    docs = _documents(
        _render(
            {
                "global": {"imageRegistry": "europe-docker.pkg.dev/p/workplace"},
                "services": {"chat": {"image": {"tag": "0a53560", "digest": digest}}},
            }
        )
    )
    images = {name: _container(d)["image"] for name, d in _kind(docs, "Deployment").items()}
    chat = next(image for name, image in images.items() if name.endswith("-chat"))
    assert chat == f"europe-docker.pkg.dev/p/workplace/workplace/chat:0a53560@{digest}"
    assert all("@" not in image for name, image in images.items() if not name.endswith("-chat"))
    with pytest.raises(HelmValuesError, match="digest"):
        _render({"services": {"chat": {"image": {"digest": "latest"}}}})


# --------------------------------------------------------------------------- Google Managed Prometheus

GMP_CRDS = Path(__file__).parent / "data" / "gmp"
RULES_FILE = REPO / "deploy" / "prometheus" / "rules" / "workplace.rules.yaml"


def _crd_schema(path: Path, version: str) -> dict:
    crd = yaml.safe_load(path.read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == version)["schema"]["openAPIV3Schema"]


def test_every_workload_is_scraped_by_gmp_with_the_labels_the_rules_select_on(renders) -> None:
    docs = renders["production"]
    monitors = _kind(docs, "PodMonitoring")
    schema = _crd_schema(GMP_CRDS / "monitoring.googleapis.com_podmonitorings.yaml", "v1")
    for name, monitor in monitors.items():
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(monitor)]
        assert not errors, f"PodMonitoring {name}: {errors}"
    for name, deployment in _kind(docs, "Deployment").items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        scraping = [m for m in monitors.values() if _selects(m["spec"]["selector"]["matchLabels"], pod_labels)]
        assert len(scraping) == 1, f"{name}: scraped by {len(scraping)} PodMonitorings"
        endpoint = scraping[0]["spec"]["endpoints"][0]
        container = _container(deployment)
        # By name: GMP sets the `container` label (what rules and KEDA select on) only then.
        assert endpoint["port"] in {p["name"] for p in container["ports"]}, name
        assert "container" in scraping[0]["spec"]["targetLabels"]["metadata"], name
    # Without GMP (the default values), none.
    assert _kind(renders["default"], "PodMonitoring") == {}


def test_gmp_rules_are_the_rules_file_itself(renders) -> None:
    rules = _kind(renders["production"], "Rules")
    assert len(rules) == 1
    (resource,) = rules.values()
    schema = _crd_schema(GMP_CRDS / "monitoring.googleapis.com_rules.yaml", "v1")
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(resource)]
    assert not errors, errors
    assert resource["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]
    # The GMP collectors' namespace may reach the metrics ports.
    policies = _kind(renders["production"], "NetworkPolicy")
    admitted = [
        rule
        for policy in policies.values()
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "gmp-system"
    ]
    assert admitted, "no NetworkPolicy admits gmp-system"


def test_production_uses_gemini_and_a_missing_key_stops_the_service(renders) -> None:
    """With aiProvider gemini a service that answers with AI refuses to start without keys
    (it does not fall back to the offline engines unseen)."""
    from workplace_kit.ai.dialogue import build_dialogue_engine
    from workplace_kit.config import ServiceSettings

    chat = _container(_kind(renders["production"], "Deployment")[f"{RELEASE}-chat"])
    env = _env(chat)
    assert env["WP_AI_PROVIDER"]["value"] == "gemini"
    # From Secret Manager, mounted as a file (test_gemini_keys_chart.py), not a Kubernetes Secret.
    assert "WP_GEMINI_API_KEYS" not in env and env["WP_SECRETS_DIR"]["value"]
    with pytest.raises(ValueError, match="WP_GEMINI_API_KEYS"):
        build_dialogue_engine(ServiceSettings(service_name="chat", ai_provider="gemini", gemini_api_keys=[]), None)


def _iam_user(container: dict) -> str:
    url = _env(container)["WP_DATABASE_URL"]["value"]
    return urllib.parse.unquote(urllib.parse.urlsplit(url).username or "")


def test_production_migrates_with_a_job_before_the_rollout_and_the_services_only_check(renders) -> None:
    docs = renders["production"]
    jobs = _kind(docs, "Job")
    deployments = _kind(docs, "Deployment")
    with_database = sorted(s.name for s in load_registry().services if s.database)
    migrations = {name: job for name, job in jobs.items() if name.endswith("-migrations")}
    assert sorted(migrations) == [f"{RELEASE}-{name}-migrations" for name in with_database]
    provision_job = _kind(renders["production-provision"], "Job")[PROVISION]
    provision_weight = int(provision_job["metadata"]["annotations"]["helm.sh/hook-weight"])
    for name in with_database:
        job = migrations[f"{RELEASE}-{name}-migrations"]
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(annotations["helm.sh/hook-weight"]) > provision_weight
        container = job["spec"]["template"]["spec"]["containers"][0]
        service = _container(deployments[f"{RELEASE}-{name}"])
        assert container["image"] == service["image"], name
        # Then the service's own IAM database user gets its rows (test_cloud_sql_chart.py).
        assert container["command"][:8] == [
            "python", "-m", "workplace_kit.db", "migrate", "--schema", name, "--package", f"{name}_service",
        ]  # fmt: skip
        assert container["command"][8:] == ["--grant-to", _iam_user(service)], name
        database = _env(container)["WP_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert database["name"] == "workplace-prod-database-ddl"
    for name, deployment in deployments.items():
        env = _env(_container(deployment))
        if "WP_DATABASE_URL" in env:
            assert env["WP_MIGRATE_ON_START"]["value"] == "false", name
    # Without the values (local and staging defaults) the services migrate at start, as here.
    assert not [n for n in _kind(renders["default"], "Job") if n.endswith("-migrations")]
    for deployment in _kind(renders["default"], "Deployment").values():
        assert "WP_MIGRATE_ON_START" not in _env(_container(deployment))
