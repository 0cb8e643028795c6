"""Typed configuration from environment variables, one prefix (WP_) for every service.

Each service subclasses ``ServiceSettings`` for its own options. ``load_settings`` turns
pydantic's validation error into a ``ConfigError`` whose message names the bad variable,
so a typo in a deployment shows up as ``WP_HTTP_PORT: ...`` rather than a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import registry

ENV_PREFIX = "WP_"


class ConfigError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


# Where the auth service publishes its signing keys (the gateway and every service fetch them).
JWKS_PATH = "/.well-known/jwks.json"


def _auth_jwks_url_default() -> str:
    """The auth service's JWKS on this host, at its port in the registry (local runs and tests)."""
    try:
        port = registry.load().get("auth").http_port
    except registry.RegistryError:
        port = 8103
    return f"http://127.0.0.1:{port}{JWKS_PATH}"


class ServiceSettings(BaseSettings):
    """Options every service shares. Env var = WP_ + field name in upper case."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    service_name: str = "workplace"
    environment: Literal["local", "test", "staging", "production"] = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    http_host: str = "127.0.0.1"
    # Default: the service's ports in the registry (services.toml), by service_name.
    http_port: int = Field(8080, ge=0, le=65535)
    grpc_port: int = Field(50050, ge=0, le=65535)

    database_url: str = "postgresql://postgres@127.0.0.1:5440/workplace"
    database_pool_max: int = Field(10, ge=1, le=200)
    # False where a Job migrates before the rollout (the chart's migrations job, with a role that
    # may change the schema): the service then only checks that nothing is pending and refuses
    # to start if something is, instead of changing the schema from every pod at start.
    migrate_on_start: bool = True
    database_command_timeout_s: float = Field(30.0, gt=0, le=600)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # For rediss:// (Memorystore with in-transit encryption): the CA that signed the server's
    # certificate (Memorystore's server CA, mounted from a ConfigMap); empty: the system's CAs.
    redis_ca_file: str = ""
    # Rate limits and daily quotas (workplace_kit.ratelimit; each service names its own rules).
    rate_limits_enabled: bool = True

    pubsub_project: str = "workplace-local"
    # The google-cloud-pubsub client reads PUBSUB_EMULATOR_HOST itself; we mirror it here
    # so the effective target shows up in the startup log.
    pubsub_emulator_host: str | None = Field(None, validation_alias="PUBSUB_EMULATOR_HOST")
    # Appended to every topic and subscription name (workplace_kit.topology), so that test
    # runs sharing one emulator never see each other's events.
    pubsub_name_suffix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", max_length=40)
    # Events a consumer handles at once (its flow control).
    pubsub_flow_max_messages: int = Field(32, ge=1, le=1000)
    # Whether a service creates missing topics and subscriptions (at start, on NOT_FOUND) or only
    # checks them at start and refuses to run without them. Unset: create on the emulator only;
    # on Pub/Sub they are provisioned beforehand and the services hold no admin role.
    pubsub_create_missing: bool | None = None

    # AI: "auto" uses Gemini when keys are set, else the offline engines.
    ai_provider: Literal["auto", "gemini", "offline", "local"] = "auto"
    gemini_api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A folder of secrets as files named as their variables (WP_GEMINI_API_KEYS), e.g. Secret
    # Manager's mounted by GKE's add-on; load_settings reads them where the environment has none.
    secrets_dir: Path | None = None
    gemini_base_url: str | None = None
    gemini_api_version: str | None = None
    gemini_model_flash: str = "gemini-2.5-flash"
    gemini_model_pro: str = "gemini-2.5-pro"
    gemini_timeout_s: float = Field(60.0, gt=0)
    gemini_retry_attempts: int = Field(4, ge=1, le=10)
    gemini_retry_initial_delay_s: float = Field(1.0, ge=0)
    gemini_retry_max_delay_s: float = Field(8.0, ge=0)
    # Concurrent connections per API key; each streaming reply holds one while it streams.
    gemini_max_connections: int = Field(2000, ge=1, le=100_000)
    # Opt-in local generative model behind an OpenAI-compatible server (Ollama, llama.cpp).
    local_llm_base_url: str | None = None
    local_llm_model: str = "qwen2.5:1.5b-instruct"

    # Which parts this process runs (see service.py); HTTP always runs (health, metrics).
    run_grpc: bool = True
    run_workers: bool = True
    # Whether the workers include the service's outbox relay (workplace_kit.outbox). False where
    # the workers may be scaled to zero: a standalone relay (`python -m workplace_kit.outbox
    # relay --schema <service>`, the chart's <service>-outbox-relay) publishes the events instead.
    outbox_relay: bool = True
    # On SIGTERM (service.serve): readiness and gRPC health say "not serving" at once; requests
    # are still served for shutdown_drain_s while the load balancer takes the pod out; then no
    # new connection is taken and what is in flight (a streamed reply) has shutdown_grace_s to
    # finish. The pod's terminationGracePeriodSeconds must cover both (the chart's does).
    shutdown_drain_s: float = Field(5.0, ge=0, le=60)
    shutdown_grace_s: float = Field(45.0, ge=0, le=600)

    otlp_endpoint: str | None = None
    # The largest request body a service reads (a chat message is at most a few KB).
    http_max_body_bytes: int = Field(64 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Several processes of one service share its ports (the local runtime sets this when the
    # registry's local_processes > 1); gRPC's server already binds with SO_REUSEPORT.
    reuse_port: bool = False
    # Share of traces recorded when a request starts one (a caller's sampling decision is kept):
    # every span of an unsampled trace costs almost nothing, ids still propagate into logs.
    trace_sample_ratio: float = Field(0.1, ge=0, le=1)
    # The Google Cloud project traces are written to (Cloud Trace): with it every log line inside
    # a span carries Cloud Logging's trace fields (logging.googleapis.com/trace = projects/<p>/
    # traces/<id>), so Cloud Logging joins the line to its trace. WP_GCP_PROJECT, else
    # GOOGLE_CLOUD_PROJECT; without either the lines keep the plain trace_id / span_id only.
    gcp_project: str | None = Field(
        default_factory=lambda: os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
        # A project id (a domain-scoped one, example.com:my-project, too).
        pattern=r"^([a-z0-9.-]+:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$",
    )
    metrics_enabled: bool = True

    # Stored personal data is encrypted (workplace_kit.crypto). Key-encryption keys: "local"
    # from WP_ENCRYPTION_KEYS ("v2:<base64>,v1:<base64>", the first current; or a file holding
    # that, WP_ENCRYPTION_KEYS_FILE), "gcp-kms" a Cloud KMS key (WP_ENCRYPTION_KMS_KEY).
    encryption_kek: Literal["local", "gcp-kms"] = "local"
    encryption_keys: SecretStr | None = None
    encryption_keys_file: str | None = None
    encryption_kms_key: str | None = None

    # Access tokens (workplace_kit.auth): every service verifies them itself against the auth
    # service's published keys. Default JWKS address: the auth service's registry port.
    auth_jwks_url: str = Field(default_factory=_auth_jwks_url_default)
    auth_issuer: str = "workplace-auth"
    auth_audience: str = "workplace"
    # The cookie a browser carries the access token in (an Authorization header wins).
    auth_cookie_name: str = Field("wp_access", pattern=r"^[A-Za-z0-9_-]+$")
    # The refresh token's cookie (sent to the auth service only). Requests carrying either
    # cookie must prove they come from our pages (workplace_kit.web_security: CSRF).
    auth_refresh_cookie_name: str = Field("wp_refresh", pattern=r"^[A-Za-z0-9_-]+$")
    # The browser's cookies (tokens, CSRF) are Secure unless turned off for plain-HTTP local use.
    auth_cookie_secure: bool = True

    @model_validator(mode="before")
    @classmethod
    def _ports_from_registry(cls, data: object) -> object:
        """Ports not set (WP_HTTP_PORT, WP_GRPC_PORT) are the registry's for this service."""
        if not isinstance(data, dict):
            return data
        name = data.get("service_name") or cls.model_fields["service_name"].default
        try:
            entry = registry.load().get(str(name))
        except registry.RegistryError:
            return data  # not a registered service (a tool, a test): the plain defaults
        data.setdefault("http_port", entry.http_port)
        if entry.grpc_port is not None:
            data.setdefault("grpc_port", entry.grpc_port)
        return data

    @field_validator("gemini_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        # Several keys, comma (or line) separated, for rotation when one hits its quota.
        if isinstance(value, str):
            return [k.strip() for k in value.replace("\n", ",").split(",") if k.strip()]
        return value

    @property
    def gemini_enabled(self) -> bool:
        if self.ai_provider == "gemini":
            return True
        return self.ai_provider == "auto" and bool(self.gemini_api_keys)


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; raise ConfigError naming each bad variable.

    With WP_SECRETS_DIR set, a file there named as a variable (WP_GEMINI_API_KEYS) gives that
    setting when the environment does not: how secrets mounted from Secret Manager arrive (the
    chart's `global.gemini.secretManager`), never passing through an environment variable."""
    secrets_dir = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    if secrets_dir and "_secrets_dir" not in overrides:
        if not Path(secrets_dir).is_dir():
            raise ConfigError(
                f"{ENV_PREFIX}SECRETS_DIR: {secrets_dir} is not a directory (is the secrets volume mounted?)"
            )
        overrides["_secrets_dir"] = secrets_dir
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            alias = cls.model_fields.get(field)
            var = (
                alias.validation_alias
                if alias is not None and isinstance(alias.validation_alias, str)
                else ENV_PREFIX + field.upper()
            )
            given = err.get("input")
            shown = f" (got {given!r})" if isinstance(given, (str, int, float)) else ""
            problems.append(f"{var}: {err['msg']}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
