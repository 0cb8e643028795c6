"""The daily budget of paid speech: characters sent to Gemini speech per UTC day.

Settings read by the wiring (not here): ``tts_daily_budget_chars`` (int, the limit; 0 turns
paid speech off).

Every Gemini speech request first reserves its characters here. One SQL statement adds them to
today's row only when the total stays within the limit, so any number of concurrent requests,
across any number of replicas, never spend more than the limit. The counts live in PostgreSQL
(table ``tts.budget_days``, migrations/0001_budget.sql), never in Redis: Redis may be flushed
or, on a developer's machine, outlive a run, and a budget must neither reset by accident nor
carry stale counts.

A request that fails without producing audio gives its characters back (``refund``): Google
does not bill a request it refused (quota, overload).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Protocol

import asyncpg
from prometheus_client import Counter, Gauge

from tts_service.engines.base import SpeechUnavailable

logger = logging.getLogger(__name__)

BUDGET_USED = Gauge("tts_budget_used_chars", "Characters of paid speech reserved today (UTC)")
BUDGET_LIMIT = Gauge("tts_budget_limit_chars", "The daily limit of paid speech, in characters")
BUDGET_RESERVED = Counter("tts_budget_reserved_chars_total", "Characters reserved for paid speech")
BUDGET_REFUSED = Counter("tts_budget_refused_total", "Paid speech requests refused because the day's budget is spent")

# Adds $2 characters to day $1 when the total stays within $3; no row back means refused.
# The INSERT's SELECT ... WHERE keeps a first request larger than the limit out as well.
# Under concurrency PostgreSQL locks the day's row and re-checks the WHERE on its newest
# version (READ COMMITTED), so the check and the addition are one atomic step.
_RESERVE = """
INSERT INTO budget_days AS b (day, used_chars)
SELECT $1::date, $2::bigint WHERE $2::bigint <= $3::bigint
ON CONFLICT (day) DO UPDATE
    SET used_chars = b.used_chars + EXCLUDED.used_chars, updated_at = now()
    WHERE b.used_chars + EXCLUDED.used_chars <= $3::bigint
RETURNING used_chars
"""

_REFUND = """
UPDATE budget_days SET used_chars = greatest(used_chars - $2::bigint, 0), updated_at = now()
WHERE day = $1::date
RETURNING used_chars
"""

_SPENT = "SELECT used_chars FROM budget_days WHERE day = $1::date"


def utc_today() -> date:
    return datetime.now(UTC).date()


class Budget(Protocol):
    """What paid speech needs of a budget (DailyBudget; tests may pass their own)."""

    async def reserve(self, chars: int) -> None: ...

    async def refund(self, chars: int) -> None: ...


class DailyBudget:
    """Characters of paid speech per UTC day, at most ``limit_chars``, kept in ``tts.budget_days``.

    ``pool``: an asyncpg pool on the "tts" schema (workplace_kit.db.create_pool). ``today``
    gives the current UTC day (tests pass their own clock).
    """

    def __init__(self, pool: asyncpg.Pool, limit_chars: int, *, today: Callable[[], date] = utc_today):
        if limit_chars < 0:
            raise ValueError("limit_chars must be 0 or more")
        self.pool = pool
        self.limit_chars = limit_chars
        self._today = today
        BUDGET_LIMIT.set(limit_chars)

    async def reserve(self, chars: int) -> None:
        """Take ``chars`` from today's budget, or raise SpeechUnavailable("budget") when that
        would go over the limit (nothing is taken then). A database failure raises
        SpeechUnavailable too: paid speech fails closed."""
        if chars < 0:
            raise ValueError("chars must be 0 or more")
        if chars == 0:
            return
        try:
            used = await self.pool.fetchval(_RESERVE, self._today(), chars, self.limit_chars)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            logger.error("tts budget could not be reserved: %s: %s", type(exc).__name__, exc)
            raise SpeechUnavailable("budget unavailable") from exc
        if used is None:
            BUDGET_REFUSED.inc()
            raise SpeechUnavailable("budget")
        BUDGET_RESERVED.inc(chars)
        BUDGET_USED.set(used)

    async def refund(self, chars: int) -> None:
        """Give back ``chars`` reserved today for a request that produced nothing. Best effort:
        a failure is logged, not raised (the budget errs on the side of spending less)."""
        if chars <= 0:
            return
        try:
            used = await self.pool.fetchval(_REFUND, self._today(), chars)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            logger.warning("tts budget refund of %d chars failed: %s: %s", chars, type(exc).__name__, exc)
            return
        if used is not None:
            BUDGET_USED.set(used)

    async def spent_today(self) -> int:
        """Characters reserved so far on the current UTC day."""
        used = await self.pool.fetchval(_SPENT, self._today())
        return int(used or 0)
