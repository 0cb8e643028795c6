"""Rate limits and daily quotas, counted in Redis by the `limits` library (fixed windows).

A rule is a name, a limit such as "30/minute" or "300/day" and the message a refused caller
reads; a hit over the limit raises RateLimited: HTTP 429 with Retry-After, gRPC
RESOURCE_EXHAUSTED. Counters are shared by every replica through Redis. They guard against
abuse and cost, not correctness: when Redis cannot answer, the request goes through (counted in
workplace_rate_limit_unchecked_total) rather than turning a Redis outage into an outage of the
service.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from prometheus_client import Counter
from starlette.requests import HTTPConnection

from .cache import tls_options
from .config import ServiceSettings
from .errors import DomainError

log = logging.getLogger(__name__)

# A limit in settings: "<count>/<second|minute|hour|day>" (a subset of limits' notation).
RATE_PATTERN = r"^[1-9][0-9]{0,8}/(second|minute|hour|day)$"

REFUSED = Counter("workplace_rate_limited_total", "Requests refused by a rate limit or quota", ["rule"])
UNCHECKED = Counter(
    "workplace_rate_limit_unchecked_total",
    "Requests let through because the limit's counter could not be read",
    ["rule"],
)


class RateLimited(DomainError):
    http_status = 429
    grpc_code_name = "RESOURCE_EXHAUSTED"
    error_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}

    def to_json(self) -> dict[str, object]:
        return super().to_json() | {"retry_after_s": self.retry_after_s}


@dataclass(frozen=True)
class Rule:
    name: str  # the counters' namespace, e.g. "chat-messages"
    limit: str  # "30/minute", "300/day": limits' notation
    message: str  # what a refused caller reads
    item: RateLimitItem = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item", parse(self.limit))


class Limiter:
    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Limiter:
        return cls(settings.redis_url, enabled=settings.rate_limits_enabled, ca_file=settings.redis_ca_file)

    def __init__(self, redis_url: str, *, enabled: bool = True, key_prefix: str = "wp-limits", ca_file: str = ""):
        self.enabled = enabled
        scheme, sep, rest = redis_url.partition("://")
        storage = RedisStorage(
            f"async+{scheme}{sep}{rest}",
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            **tls_options(redis_url, ca_file),
        )
        self._limiter = FixedWindowRateLimiter(storage)
        self._last_warning = 0.0

    async def hit(self, rule: Rule, *identifiers: str) -> None:
        """Count one use of `rule` by `identifiers` (an account, an address); RateLimited when
        the window is full."""
        if not self.enabled:
            return
        try:
            if await self._limiter.hit(rule.item, rule.name, *identifiers):
                return
            stats = await self._limiter.get_window_stats(rule.item, rule.name, *identifiers)
        except Exception as exc:  # noqa: BLE001 - any storage failure: let the request through
            UNCHECKED.labels(rule.name).inc()
            now = time.monotonic()
            if now - self._last_warning > 30:  # one line per half minute, not one per request
                self._last_warning = now
                log.warning("rate limit %s not checked: %r", rule.name, exc)
            return
        REFUSED.labels(rule.name).inc()
        raise RateLimited(rule.message, retry_after_s=max(1, math.ceil(stats.reset_time - time.time())))


def client_address(connection: HTTPConnection) -> str:
    """The caller's address: the one the gateway found trustworthy (x-envoy-external-address:
    behind the cloud load balancer, the client the balancer saw, xff_num_trusted_hops in the
    chart; Envoy overwrites any a client sends), else the last X-Forwarded-For entry (the one
    the gateway appends for the connection it received; entries before it are the client's own
    claims), else the peer."""
    external = connection.headers.get("x-envoy-external-address", "").strip()
    if external:
        return external[:64]
    forwarded = connection.headers.get("x-forwarded-for", "")
    if forwarded.strip():
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return connection.client.host if connection.client else "unknown"
