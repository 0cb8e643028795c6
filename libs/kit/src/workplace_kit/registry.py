"""The service registry (services.toml beside this file): every service, once.

Read by the services themselves (default ports, placeholder entry points), by
scripts/localrt.py (which parses the same file with the standard library) and by
scripts/generate.py, which writes Envoy's routes and clusters, the local Prometheus scrape
config and the Helm chart's service table from it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REGISTRY_FILE = Path(__file__).with_name("services.toml")
_ROUTE_MATCHES = ("path_prefix", "prefix", "path")
# What the gateway asks of a request's access token on a route (Envoy jwt_authn):
#   required  a valid token (Bearer header or the pages' cookie), else 401 at the gateway
#   optional  verified when present; a missing or failed one passes on to the service, which
#             decides (sign-in, refresh and the pages must work with an expired access cookie)
TOKEN_REQUIREMENTS = ("required", "optional")


class RegistryError(ValueError):
    """services.toml is malformed; the message names the service and the field."""


@dataclass(frozen=True)
class Route:
    match: str  # path_prefix | prefix | path
    value: str
    timeout: str = "120s"
    stream: bool = False
    token: str = "required"
    # Shared with the legacy app while traffic moves over: the gateway splits it between this
    # service and the legacy app by weights set at run time (scripts/canary.py).
    canary: bool = False


@dataclass(frozen=True)
class Legacy:
    """The legacy Flask app, reached through the gateway until every path has moved over."""

    http_port: int  # where it listens locally (a stand-in in tests); in the cluster: chart values
    routes: tuple[Route, ...] = ()  # the paths only it serves (its own API)


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    description: str
    http_port: int
    grpc_port: int | None = None
    grpc_service: str | None = None
    routes: tuple[Route, ...] = ()
    database: bool = False
    gemini: bool = False
    local_processes: int = 1
    # The gRPC methods the public gateway routes (an allow-list); every other method of the
    # service (and reflection, health) is reachable only inside the cluster.
    public_rpcs: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return f"{self.name}_service"


@dataclass(frozen=True)
class Registry:
    services: tuple[ServiceEntry, ...] = field(default_factory=tuple)
    legacy: Legacy | None = None

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        if self.legacy is not None:
            seen[self.legacy.http_port] = "the legacy app"
        for entry in self.services:
            for port in (entry.http_port, entry.grpc_port):
                if port is None:
                    continue
                if port in seen:
                    raise RegistryError(f"{entry.name}: port {port} is already {seen[port]}'s")
                seen[port] = entry.name

    def get(self, name: str) -> ServiceEntry:
        for entry in self.services:
            if entry.name == name:
                return entry
        raise RegistryError(f"no service {name!r} in {REGISTRY_FILE.name} (known: {', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.services)


def _route(service: str, raw: dict[str, Any]) -> Route:
    matches = [key for key in _ROUTE_MATCHES if key in raw]
    if len(matches) != 1:
        raise RegistryError(f"{service}: each route needs exactly one of {', '.join(_ROUTE_MATCHES)}: {raw}")
    unknown = set(raw) - {*_ROUTE_MATCHES, "timeout", "stream", "token", "canary"}
    if unknown:
        raise RegistryError(f"{service}: unknown route field(s) {sorted(unknown)}")
    token = raw.get("token", "required")
    if token not in TOKEN_REQUIREMENTS:
        raise RegistryError(f"{service}: route token must be one of {', '.join(TOKEN_REQUIREMENTS)}: {raw}")
    return Route(
        matches[0],
        raw[matches[0]],
        raw.get("timeout", "120s"),
        bool(raw.get("stream", False)),
        token,
        bool(raw.get("canary", False)),
    )


def _legacy(raw: dict[str, Any]) -> Legacy:
    unknown = set(raw) - {"http_port", "routes", "description"}
    if unknown:
        raise RegistryError(f"legacy: unknown field(s) {sorted(unknown)}")
    if "http_port" not in raw:
        raise RegistryError("legacy: http_port is required")
    routes = tuple(_route("legacy", r) for r in raw.get("routes", []))
    if any(r.canary for r in routes):
        raise RegistryError("legacy: its own routes are not split (canary belongs on a service's route)")
    return Legacy(http_port=int(raw["http_port"]), routes=routes)


def parse(text: str) -> Registry:
    data = tomllib.loads(text)
    entries = []
    allowed = {
        *("description", "http_port", "grpc_port", "grpc_service", "routes", "database", "gemini"),
        "local_processes",
        "public_rpcs",
    }
    for name, raw in data.get("services", {}).items():
        unknown = set(raw) - allowed
        if unknown:
            raise RegistryError(f"{name}: unknown field(s) {sorted(unknown)}")
        if "http_port" not in raw:
            raise RegistryError(f"{name}: http_port is required")
        if not 1 <= int(raw.get("local_processes", 1)) <= 16:
            raise RegistryError(f"{name}: local_processes must be between 1 and 16")
        if ("grpc_port" in raw) != ("grpc_service" in raw):
            raise RegistryError(f"{name}: grpc_port and grpc_service go together")
        public_rpcs = tuple(raw.get("public_rpcs", ()))
        if public_rpcs and "grpc_service" not in raw:
            raise RegistryError(f"{name}: public_rpcs needs a grpc_service")
        if not all(isinstance(rpc, str) and rpc.isidentifier() for rpc in public_rpcs):
            raise RegistryError(f"{name}: public_rpcs are method names such as StreamReply: {public_rpcs}")
        entries.append(
            ServiceEntry(
                name=name,
                description=raw.get("description", ""),
                http_port=int(raw["http_port"]),
                grpc_port=int(raw["grpc_port"]) if "grpc_port" in raw else None,
                grpc_service=raw.get("grpc_service"),
                routes=tuple(_route(name, r) for r in raw.get("routes", [])),
                database=bool(raw.get("database", False)),
                gemini=bool(raw.get("gemini", False)),
                local_processes=int(raw.get("local_processes", 1)),
                public_rpcs=public_rpcs,
            )
        )
    legacy = _legacy(data["legacy"]) if "legacy" in data else None
    if legacy is None and any(r.canary for e in entries for r in e.routes):
        raise RegistryError("a route is marked canary but there is no [legacy] app to split it with")
    return Registry(tuple(entries), legacy)


@cache
def load() -> Registry:
    return parse(REGISTRY_FILE.read_text())
