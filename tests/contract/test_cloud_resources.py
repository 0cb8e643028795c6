"""Contract tests for the cloud resources as code (deploy/cloud/config-connector, written by
scripts/cloud_resources.py) and the chart's database connection budget: no cloud, no cluster.

Checked statically: every manifest against its Config Connector CRD's openAPIV3Schema (Config
Connector's published CRDs, tests/contract/data/config-connector/README.md), with unknown
fields refused as the API server's strict field validation would; the Pub/Sub topology against
workplace_kit.topology and against what the bus itself creates on the emulator; every Google
service account's roles against who publishes and consumes what; the names the chart refers to
(Kubernetes service accounts, the public edge). Not checked: that Google accepts the values
(tier names, WAF expressions, quotas), which only an apply in a real project shows.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from helm_python.chart import Chart
from helm_python.errors import HelmRenderError, HelmValuesError
from test_deploy_manifests import _render  # rendered once per set of values
from workplace_kit import bus as bus_module
from workplace_kit import topology
from workplace_kit.bus import EventBus
from workplace_kit.registry import REGISTRY_FILE
from workplace_kit.registry import load as load_registry
from workplace_kit.registry import parse as parse_registry

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(__file__).parent / "data" / "config-connector"
MANIFESTS = REPO / "deploy" / "cloud" / "config-connector"
CHART_DIR = REPO / "deploy" / "helm" / "workplace"
PRODUCTION_VALUES = CHART_DIR / "values-production.yaml"
RELEASE = NAMESPACE = "workplace"
PUBSUB_AGENT = "serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
PUBSUB_ROLES = {"roles/pubsub.publisher", "roles/pubsub.subscriber"}


def _script(name: str):
    module_name = f"{name}_for_cloud_tests"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


cloud = _script("cloud_resources")


def _production() -> dict:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def _documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    """{file name: its resources}, as committed."""
    return {path.name: _documents(path.read_text()) for path in sorted(MANIFESTS.glob("*.yaml"))}


@pytest.fixture(scope="module")
def resources(manifests) -> list[dict]:
    return [d for docs in manifests.values() for d in docs]


def _kind(docs: list[dict], kind: str) -> dict[str, dict]:
    named: dict[str, dict] = {}
    for d in docs:
        if d["kind"] == kind:
            assert d["metadata"]["name"] not in named, f"two {kind} named {d['metadata']['name']}"
            named[d["metadata"]["name"]] = d
    return named


def _rendered(values: dict) -> list[dict]:
    return [d for path, text in _render(values).items() if not path.endswith("NOTES.txt") for d in _documents(text)]


@pytest.fixture(scope="module")
def production_render() -> list[dict]:
    return _rendered(_production())


# --------------------------------------------------------------------------- schemas


def _closed(schema: dict) -> dict:
    """The schema with every object's properties closed: an unknown field is an error, as with
    the API server's strict field validation (kubectl's default warns and drops it)."""
    schema = copy.deepcopy(schema)

    def close(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                if not node.get("x-kubernetes-preserve-unknown-fields"):
                    node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    out = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = _closed(version["schema"]["openAPIV3Schema"])
                out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def test_every_manifest_validates_against_config_connectors_crd(resources, schemas) -> None:
    assert len(resources) > 100
    failures = []
    for doc in resources:
        validator = schemas.get((doc["apiVersion"], doc["kind"]))
        assert validator is not None, f"no CRD in {CRDS} for {doc['apiVersion']} {doc['kind']}"
        failures += [
            f"{doc['kind']}/{doc['metadata']['name']} {list(e.absolute_path)}: {e.message[:200]}"
            for e in validator.iter_errors(doc)
        ]
        # The stable version: Config Connector's v1alpha1 may change without notice.
        assert doc["apiVersion"].endswith("/v1beta1"), doc["apiVersion"]
    assert failures == []


def test_the_crd_check_would_catch_a_wrong_field(resources, schemas) -> None:
    subscription = next(d for d in resources if d["kind"] == "PubSubSubscription")
    validator = schemas[(subscription["apiVersion"], "PubSubSubscription")]
    misspelt = copy.deepcopy(subscription)
    misspelt["spec"]["ackDeadlineSecond"] = misspelt["spec"].pop("ackDeadlineSeconds")
    assert any("ackDeadlineSecond" in e.message for e in validator.iter_errors(misspelt))
    wrong_type = copy.deepcopy(subscription)
    wrong_type["spec"]["deadLetterPolicy"]["maxDeliveryAttempts"] = "fifteen"
    assert list(validator.iter_errors(wrong_type))
    no_topic = copy.deepcopy(subscription)
    del no_topic["spec"]["topicRef"]
    assert list(validator.iter_errors(no_topic))


def test_the_crds_are_config_connectors_unchanged_with_their_source_named() -> None:
    readme = (CRDS / "README.md").read_text()
    assert "GoogleCloudPlatform/k8s-config-connector" in readme and "Apache" in readme
    assert re.search(r"v1\.\d+\.\d+", readme) and re.search(r"\b[0-9a-f]{40}\b", readme)
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        assert crd["spec"]["group"].endswith(".cnrm.cloud.google.com"), path.name
        assert path.name == f"apiextensions.k8s.io_v1_customresourcedefinition_{crd['metadata']['name']}.yaml"


# --------------------------------------------------------------------------- freshness


def test_generated_manifests_are_not_stale() -> None:
    fresh = cloud.texts(load_registry())
    committed = {p.name: p.read_text() for p in MANIFESTS.glob("*.yaml")}
    assert set(committed) == set(fresh), "deploy/cloud/config-connector has files the generator does not write"
    stale = [name for name, text in fresh.items() if committed[name] != text]
    assert stale == [], f"stale: {stale}; run `task generate`"
    # scripts/generate.py writes them, so `task generate` and its --check cover them.
    generate = _script("generate")
    assert {p.name for p in generate.TARGETS if p.parent == MANIFESTS} == set(fresh)


def test_a_new_service_gets_its_account_and_grants() -> None:
    """The manifests follow the facts: one more service consuming one more subscription."""
    registry = parse_registry(
        REGISTRY_FILE.read_text()
        + '\n[services.quiz]\ndescription = "throwaway"\nhttp_port = 8199\ndatabase = true\ngemini = false\n'
    )
    subscription = topology.SubscriptionSpec("quiz.session-ended", "session.ended", consumer="quiz")
    bigger = topology.Topology(subscriptions=(*topology.SUBSCRIPTIONS, subscription))
    production = _production()
    production["services"]["quiz"] = {
        "serviceAccount": {"gcpServiceAccount": "workplace-quiz@p-123456.iam.gserviceaccount.com"}
    }
    docs = [d for ds in cloud.manifests(registry, topology=bigger, production=production).values() for d in ds]
    assert "quiz.session-ended" in _kind(docs, "PubSubSubscription")
    assert "quiz.session-ended.dlq" in _kind(docs, "PubSubTopic")
    assert "workplace-quiz" in _kind(docs, "IAMServiceAccount")
    assert "workplace-quiz-iam" in _kind(docs, "SQLUser")
    grants = {g for g in _grants(docs)["workplace-quiz"] if g[0].startswith("roles/pubsub.")}
    assert grants == {
        ("roles/pubsub.subscriber", "PubSubSubscription", "quiz.session-ended"),
        ("roles/pubsub.publisher", "PubSubTopic", "quiz.session-ended.dlq"),
    }
    # A service without its Google service account in values-production.yaml is an error.
    del production["services"]["quiz"]
    with pytest.raises(SystemExit, match="services.quiz.serviceAccount.gcpServiceAccount"):
        cloud.manifests(registry, topology=bigger, production=production)


# --------------------------------------------------------------------------- Pub/Sub


class _RecordingClient:
    def __init__(self) -> None:
        self.topics: list[str] = []
        self.subscriptions: list[dict] = []

    async def create_topic(self, request, timeout=None):
        self.topics.append(request["name"])

    async def create_subscription(self, request, timeout=None):
        self.subscriptions.append(request)


def _seconds(duration: dict) -> str:
    value = duration["seconds"] + duration.get("nanos", 0) / 1e9
    return f"{int(value)}s" if value.is_integer() else f"{value}s"


def _as_config_connector(request: dict) -> dict:
    """A create_subscription request of the bus, in Config Connector's fields."""
    last = lambda path: path.rsplit("/", 1)[1]  # noqa: E731
    spec: dict = {"topicRef": {"name": last(request["topic"])}, "ackDeadlineSeconds": request["ack_deadline_seconds"]}
    if "enable_message_ordering" in request:
        spec["enableMessageOrdering"] = request["enable_message_ordering"]
    if "dead_letter_policy" in request:
        policy = request["dead_letter_policy"]
        spec["deadLetterPolicy"] = {
            "deadLetterTopicRef": {"name": last(policy["dead_letter_topic"])},
            "maxDeliveryAttempts": policy["max_delivery_attempts"],
        }
    if "retry_policy" in request:
        retry = request["retry_policy"]
        spec["retryPolicy"] = {
            "minimumBackoff": _seconds(retry["minimum_backoff"]),
            "maximumBackoff": _seconds(retry["maximum_backoff"]),
        }
    # The bus's empty expiration policy (no ttl) is Config Connector's ttl "": never expires.
    assert request["expiration_policy"] == {}
    spec["expirationPolicy"] = {"ttl": ""}
    if "message_retention_duration" in request:
        spec["messageRetentionDuration"] = _seconds(request["message_retention_duration"])
    return spec


async def test_the_topology_is_what_the_bus_creates_on_the_emulator(resources, monkeypatch) -> None:
    recorder = _RecordingClient()
    monkeypatch.setattr(bus_module, "PublisherAsyncClient", lambda: recorder)
    monkeypatch.setattr(bus_module, "SubscriberAsyncClient", lambda: recorder)
    bus = EventBus("p", service_name="provision", create_missing=True)
    await bus.provision()
    topics = {path.rsplit("/", 1)[1] for path in recorder.topics}
    assert set(_kind(resources, "PubSubTopic")) == topics
    subscriptions = _kind(resources, "PubSubSubscription")
    expected = {r["name"].rsplit("/", 1)[1]: _as_config_connector(r) for r in recorder.subscriptions}
    assert set(subscriptions) == set(expected)
    for name, spec in expected.items():
        assert subscriptions[name]["spec"] == spec, name


def test_every_topic_and_subscription_of_the_topology_is_there(resources) -> None:
    topics = _kind(resources, "PubSubTopic")
    subscriptions = _kind(resources, "PubSubSubscription")
    assert {t.name for t in topology.TOPICS} <= set(topics)
    for sub in topology.SUBSCRIPTIONS:
        spec = subscriptions[sub.name]["spec"]
        assert spec["topicRef"] == {"name": sub.topic}
        assert spec["ackDeadlineSeconds"] == sub.ack_deadline_s
        assert spec["deadLetterPolicy"] == {
            "deadLetterTopicRef": {"name": f"{sub.name}.dlq"},
            "maxDeliveryAttempts": sub.max_delivery_attempts,
        }
        assert spec["retryPolicy"] == {
            "minimumBackoff": f"{sub.min_backoff_s:g}s",
            "maximumBackoff": f"{sub.max_backoff_s:g}s",
        }
        assert f"{sub.name}.dlq" in topics
        inspection = subscriptions[f"{sub.name}.dlq"]["spec"]
        assert inspection["topicRef"] == {"name": f"{sub.name}.dlq"}
        for s in (spec, inspection):
            assert s["expirationPolicy"] == {"ttl": ""}, "never expires"
    # Deleting a manifest leaves the topic and its messages.
    for doc in [*topics.values(), *subscriptions.values()]:
        assert doc["metadata"]["annotations"]["cnrm.cloud.google.com/deletion-policy"] == "abandon"


def test_the_pubsub_service_agent_can_dead_letter(resources) -> None:
    agent = {
        (d["spec"]["role"], d["spec"]["resourceRef"]["kind"], d["spec"]["resourceRef"]["name"])
        for d in _kind(resources, "IAMPolicyMember").values()
        if d["spec"].get("member") == PUBSUB_AGENT
    }
    expected = set()
    for sub in topology.SUBSCRIPTIONS:
        expected.add(("roles/pubsub.publisher", "PubSubTopic", f"{sub.name}.dlq"))
        expected.add(("roles/pubsub.subscriber", "PubSubSubscription", sub.name))
    assert agent == expected


# --------------------------------------------------------------------------- accounts


def _grants(docs: list[dict]) -> dict[str, set[tuple[str, str, str]]]:
    """{Google service account: {(role, resource kind, resource name or external)}}."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for d in _kind(docs, "IAMPolicyMember").values():
        spec = d["spec"]
        if "memberFrom" in spec:
            account = spec["memberFrom"]["serviceAccountRef"]["name"]
            ref = spec["resourceRef"]
            out.setdefault(account, set()).add((spec["role"], ref["kind"], ref.get("name") or ref["external"]))
    return out


def _accounts() -> dict[str, str]:
    """{service: its Google service account id}, from values-production.yaml."""
    services = _production()["services"]
    return {s: services[s]["serviceAccount"]["gcpServiceAccount"].split("@")[0] for s in load_registry().names}


def test_each_service_may_publish_and_pull_only_its_own(resources) -> None:
    accounts = _accounts()
    expected: dict[str, set] = {account: set() for account in accounts.values()}
    for topic in topology.TOPICS:
        for service in topic.publishers:
            expected[accounts[service]].add(("roles/pubsub.publisher", "PubSubTopic", topic.name))
    for sub in topology.SUBSCRIPTIONS:
        account = accounts[sub.consumer]
        expected[account].add(("roles/pubsub.subscriber", "PubSubSubscription", sub.name))
        # The bus dead-letters an undecodable or permanently failing event itself.
        expected[account].add(("roles/pubsub.publisher", "PubSubTopic", f"{sub.name}.dlq"))
    grants = _grants(resources)
    for account in accounts.values():
        pubsub = {g for g in grants.get(account, set()) if g[0].startswith("roles/pubsub.")}
        assert pubsub == expected[account], account
    # Nobody holds a Pub/Sub role on the project, nor an admin or editor role anywhere.
    for d in _kind(resources, "IAMPolicyMember").values():
        role, ref = d["spec"]["role"], d["spec"]["resourceRef"]
        assert not re.search(r"(admin|editor|owner)$", role), d["metadata"]["name"]
        if role.startswith("roles/pubsub."):
            assert role in PUBSUB_ROLES and ref["kind"] in {"PubSubTopic", "PubSubSubscription"}


def test_each_service_publishes_only_where_the_topology_lets_it() -> None:
    """Its account may publish only to the topics whose publishers name it: an event a service
    builds for another topic would be refused by Pub/Sub in production."""
    from workplace.events.v1 import events_pb2

    for entry in load_registry().services:
        source = "".join(p.read_text() for p in (REPO / "services" / entry.name / "src").rglob("*.py"))
        for type_name in set(re.findall(r"events_pb2\.(\w+)\(", source)):
            topic = topology.DEFAULT.topic_for(getattr(events_pb2, type_name))
            assert entry.name in topic.publishers, f"{entry.name} builds {type_name} for {topic.name}"


def test_other_roles_follow_the_registry(resources) -> None:
    accounts = _accounts()
    registry = load_registry()
    grants = _grants(resources)
    kms_key = _production()["global"]["encryption"]["kmsKeyName"]
    for entry in registry.services:
        other = {g for g in grants.get(accounts[entry.name], set()) if not g[0].startswith("roles/pubsub.")}
        expected = set()
        if entry.database:
            expected |= {
                ("roles/cloudsql.client", "Project", "projects/${PROJECT_ID}"),
                ("roles/cloudsql.instanceUser", "Project", "projects/${PROJECT_ID}"),
                ("roles/cloudkms.cryptoKeyEncrypterDecrypter", "KMSCryptoKey", kms_key),
            }
        if entry.gemini:
            expected.add(("roles/secretmanager.secretAccessor", "SecretManagerSecret", cloud.GEMINI_SECRET))
        assert other == expected, entry.name
    # The project-level Cloud SQL roles are held to the one instance.
    for d in _kind(resources, "IAMPolicyMember").values():
        if d["spec"]["role"].startswith("roles/cloudsql."):
            assert f"instances/{cloud.SQL_INSTANCE}'" in d["spec"]["condition"]["expression"]
    # The trace collector writes traces, nothing else.
    collector = _production()["otelCollector"]["serviceAccount"]["gcpServiceAccount"].split("@")[0]
    assert grants[collector] == {("roles/cloudtrace.agent", "Project", "projects/${PROJECT_ID}")}


def test_workload_identity_binds_the_charts_service_accounts(resources, production_render) -> None:
    production = _production()
    project = production["global"]["pubsubProject"]
    accounts = _kind(resources, "IAMServiceAccount")
    members = {
        (d["spec"]["resourceRef"]["name"], d["spec"]["member"])
        for d in _kind(resources, "IAMPolicyMember").values()
        if d["spec"]["role"] == "roles/iam.workloadIdentityUser"
    }
    annotated = {
        d["metadata"]["name"]: d["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        for d in production_render
        if d["kind"] == "ServiceAccount" and "iam.gke.io/gcp-service-account" in d["metadata"].get("annotations", {})
    }
    assert {f"{RELEASE}-{s}" for s in load_registry().names} <= set(annotated)
    for ksa, email in annotated.items():
        account, _, domain = email.partition("@")
        assert domain == f"{project}.iam.gserviceaccount.com", email
        assert account in accounts, f"{ksa}: no IAMServiceAccount {account}"
        assert (account, f"serviceAccount:${{PROJECT_ID}}.svc.id.goog[${{APP_NAMESPACE}}/{ksa}]") in members, ksa
    assert {account for account, _ in members} == set(accounts), "a binding for every account, no other"


def test_production_leaves_pubsub_provisioning_to_config_connector(production_render) -> None:
    # The manifests above cover the whole topology, so no Job with roles/pubsub.editor is needed.
    assert _production()["pubsubProvision"]["enabled"] is False
    assert not [
        d for d in production_render if d["kind"] == "Job" and d["metadata"]["name"].endswith("pubsub-provision")
    ]


# --------------------------------------------------------------------------- data and edge


def test_cloud_sql_is_private_postgres_15_with_iam_users_and_backups(resources) -> None:
    (instance,) = _kind(resources, "SQLInstance").values()
    spec = instance["spec"]
    assert spec["databaseVersion"] == "POSTGRES_15"
    settings = spec["settings"]
    assert settings["ipConfiguration"]["ipv4Enabled"] is False and settings["ipConfiguration"]["privateNetworkRef"]
    flags = {f["name"]: f["value"] for f in settings["databaseFlags"]}
    assert flags["cloudsql.iam_authentication"] == "on"
    assert int(flags["max_connections"]) == cloud.SQL_MAX_CONNECTIONS
    backups = settings["backupConfiguration"]
    assert backups["enabled"] and backups["pointInTimeRecoveryEnabled"]
    assert settings["deletionProtectionEnabled"] is True
    assert set(_kind(resources, "SQLDatabase")) == {cloud.SQL_DATABASE}
    users = _kind(resources, "SQLUser")
    accounts = _accounts()
    assert {u["spec"]["resourceID"] for u in users.values()} == {
        f"{accounts[s.name]}@${{PROJECT_ID}}.iam" for s in load_registry().services if s.database
    }
    assert all(u["spec"]["type"] == "CLOUD_IAM_SERVICE_ACCOUNT" for u in users.values())


def test_redis_has_auth_and_tls(resources) -> None:
    (redis,) = _kind(resources, "RedisInstance").values()
    assert redis["spec"]["authEnabled"] is True
    assert redis["spec"]["transitEncryptionMode"] == "SERVER_AUTHENTICATION"
    assert redis["spec"]["connectMode"] == "PRIVATE_SERVICE_ACCESS"


def test_the_edge_is_what_the_chart_refers_to(resources, production_render) -> None:
    edge = _production()["edge"]
    (address,) = _kind(resources, "ComputeAddress").values()
    assert address["metadata"]["name"] == edge["staticAddressName"]
    assert (address["spec"]["location"], address["spec"]["addressType"]) == ("global", "EXTERNAL")
    assert set(_kind(resources, "CertificateManagerCertificateMap")) == {edge["certificateMap"]}
    certificates = _kind(resources, "CertificateManagerCertificate")
    entries = _kind(resources, "CertificateManagerCertificateMapEntry").values()
    assert sorted(e["spec"]["hostname"] for e in entries) == sorted(edge["hostnames"])
    for entry in entries:
        assert entry["spec"]["mapRef"] == {"name": edge["certificateMap"]}
        for ref in entry["spec"]["certificatesRefs"]:
            assert entry["spec"]["hostname"] in certificates[ref["name"]]["spec"]["managed"]["domains"]
    assert set(_kind(resources, "ComputeSecurityPolicy")) == {edge["securityPolicy"]}
    if edge.get("sslPolicy"):
        assert set(_kind(resources, "ComputeSSLPolicy")) == {edge["sslPolicy"]}
    # The rendered chart names the same resources (GKE Gateway, its backend policy).
    text = yaml.safe_dump_all(
        [d for d in production_render if d["apiVersion"].startswith(("gateway.", "networking.gke.io"))]
    )
    for name in (edge["staticAddressName"], edge["certificateMap"], edge["securityPolicy"]):
        assert name in text, f"the chart's edge does not refer to {name}"


def test_cloud_armor_has_waf_rate_ban_and_default_allow(resources) -> None:
    (policy,) = _kind(resources, "ComputeSecurityPolicy").values()
    rules = {r["priority"]: r for r in policy["spec"]["rule"]}
    assert len(rules) == len(policy["spec"]["rule"]), "priorities are unique"
    default = rules[2147483647]
    assert default["action"] == "allow" and default["match"]["config"]["srcIpRanges"] == ["*"]
    waf = [r for r in rules.values() if "evaluatePreconfiguredWaf" in r["match"].get("expr", {}).get("expression", "")]
    assert {re.search(r"'(\w+)-v33", r["match"]["expr"]["expression"]).group(1) for r in waf} == {"sqli", "xss"}
    assert all(r["action"].startswith("deny(") for r in waf)
    (ban,) = [r for r in rules.values() if r["action"] == "rate_based_ban"]
    options = ban["rateLimitOptions"]
    assert options["enforceOnKey"] == "IP" and options["exceedAction"] == "deny(429)"
    assert options["banThreshold"]["count"] > options["rateLimitThreshold"]["count"]


# --------------------------------------------------------------------------- placeholders


def test_placeholders_are_the_documented_ones_and_render_substitutes_them() -> None:
    text = "".join(p.read_text() for p in MANIFESTS.glob("*.yaml"))
    assert set(re.findall(r"\$\{([A-Za-z_]+)\}", text)) == set(cloud.PLACEHOLDERS)
    docs = (REPO / "docs" / "production.md").read_text()
    for name in cloud.PLACEHOLDERS:
        assert name in docs, f"docs/production.md does not explain {name}"
    values = {
        "PROJECT_ID": "workplace-prod",
        "PROJECT_NUMBER": "123456789012",
        "REGION": "asia-northeast1",
        "NETWORK": "default",
        "APP_NAMESPACE": "workplace",
    }
    script = str(REPO / "scripts" / "cloud_resources.py")
    result = subprocess.run(
        [sys.executable, script, "render", *(f"{k}={v}" for k, v in values.items())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "${" not in result.stdout
    rendered = _documents(result.stdout)
    assert len(rendered) == sum(len(_documents(p.read_text())) for p in MANIFESTS.glob("*.yaml"))
    assert "serviceAccount:workplace-prod.svc.id.goog[workplace/workplace-chat]" in result.stdout
    # A missing value is refused, not left empty (envsubst would).
    del values["PROJECT_NUMBER"]
    result = subprocess.run(
        [sys.executable, script, "render", *(f"{k}={v}" for k, v in values.items())], capture_output=True, text=True
    )
    assert result.returncode == 2 and "PROJECT_NUMBER" in result.stderr and result.stdout == ""


# --------------------------------------------------------------------------- connection budget


def _budget(docs: list[dict]) -> int:
    """Connections the rendered release could hold: the chart's sum, computed from its output."""
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicaCount"] for d in docs if d["kind"] == "ScaledObject"
    }
    scaled |= {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicas"]
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    total = 0
    for d in docs:
        if d["kind"] == "Deployment":
            env = {e["name"]: e for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            if "WP_DATABASE_URL" in env:
                pods = scaled.get(d["metadata"]["name"], d["spec"].get("replicas", 1))
                surge = d["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
                if isinstance(surge, str):  # a share, rounded up
                    surge = -(-pods * int(surge.rstrip("%")) // 100)
                total += (pods + surge) * int(env["WP_DATABASE_POOL_MAX"]["value"])
        if d["kind"] == "Job" and d["metadata"]["name"].endswith("-migrations"):
            total += 2
    return total


def test_production_fits_the_cloud_sql_connection_limit(production_render) -> None:
    limit = _production()["database"]["maxConnections"]
    used = _budget(production_render)
    assert 0 < used <= limit
    # The limit is the instance's max_connections less a reserve for administration.
    assert 20 <= cloud.SQL_MAX_CONNECTIONS - limit <= cloud.SQL_MAX_CONNECTIONS // 10


def test_too_many_connections_fail_the_render_with_a_clear_message() -> None:
    values = _production()
    values["services"]["chat"]["autoscaling"]["maxReplicas"] = 400
    with pytest.raises(HelmRenderError) as failed:
        _render(values)
    message = str(failed.value)
    assert "database connections" in message and "database.maxConnections 1150" in message
    assert "chat 500 pods x 4 = 2000" in message, "names the workload that takes them"
    # The number in the message is the one the release could really open.
    values["database"]["maxConnections"] = 0
    could = int(re.search(r"could open (\d+)", message).group(1))
    assert could == _budget(_rendered(values))
    # A bigger pool per process is counted too.
    values = _production()
    values["serviceDefaults"]["databasePoolMax"] = 10
    with pytest.raises(HelmRenderError, match="database connections"):
        _render(values)


def test_the_budget_is_off_by_default_and_its_values_are_checked() -> None:
    assert Chart.load(CHART_DIR).values["database"]["maxConnections"] == 0
    with pytest.raises(HelmValuesError, match="maxConnections"):
        _render({"database": {"maxConnections": -1}})
    with pytest.raises(HelmValuesError, match="databasePoolMax"):
        _render({"serviceDefaults": {"databasePoolMax": 0}})
    with pytest.raises(HelmValuesError, match="maxConnection"):
        _render({"database": {"maxConnection": 100}})
