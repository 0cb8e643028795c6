"""The daily budget of paid speech against the real PostgreSQL, with the tts service's own
migration: reservations up to the limit, refusal past it, no overspending under concurrency,
a new UTC day starting from zero."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import date
from pathlib import Path

import pytest
import tts_service
from tts_service.budget import DailyBudget
from tts_service.engines.base import SpeechUnavailable
from workplace_kit.db import apply_migrations, create_pool

MIGRATIONS = Path(tts_service.__file__).parent / "migrations"


class Clock:
    def __init__(self, day: date):
        self.day = day

    def __call__(self) -> date:
        return self.day


@pytest.fixture
async def pool():
    schema = f"tts_budget_test_{uuid.uuid4().hex[:8]}"
    url = os.environ["WP_DATABASE_URL"]
    applied = await apply_migrations(url, schema=schema, migrations_dir=MIGRATIONS)
    assert "0001_budget" in applied
    db = await create_pool(url, schema=schema, max_size=20)
    yield db
    await db.execute(f"DROP SCHEMA {schema} CASCADE")
    await db.close()


async def test_reservations_count_up_to_the_limit_and_no_further(pool) -> None:
    clock = Clock(date(2026, 12, 3))
    budget = DailyBudget(pool, 100, today=clock)
    assert await budget.spent_today() == 0

    await budget.reserve(60)
    await budget.reserve(40)  # exactly the limit
    assert await budget.spent_today() == 100
    with pytest.raises(SpeechUnavailable, match="budget"):
        await budget.reserve(1)
    assert await budget.spent_today() == 100  # a refused reservation takes nothing

    await budget.refund(30)
    await budget.reserve(25)
    assert await budget.spent_today() == 95


async def test_a_request_larger_than_the_whole_budget_is_refused_on_a_fresh_day(pool) -> None:
    budget = DailyBudget(pool, 10, today=Clock(date(2026, 12, 3)))
    with pytest.raises(SpeechUnavailable, match="budget"):
        await budget.reserve(11)
    assert await budget.spent_today() == 0
    assert await pool.fetchval("SELECT count(*) FROM budget_days") == 0


async def test_concurrent_reservations_never_spend_past_the_limit(pool) -> None:
    budget = DailyBudget(pool, 1_000, today=Clock(date(2026, 12, 3)))
    sizes = [7, 13, 29, 50] * 40  # 3,960 characters asked for, in 160 requests at once

    async def ask(size: int) -> int:
        try:
            await budget.reserve(size)
        except SpeechUnavailable:
            return 0
        return size

    granted = await asyncio.gather(*(ask(size) for size in sizes))

    spent = await budget.spent_today()
    assert spent == sum(granted) <= 1_000
    # Refusals only happen near the limit: what is left is less than the smallest request refused.
    refused = [size for size, got in zip(sizes, granted, strict=True) if not got]
    assert refused and 1_000 - spent < min(refused)


async def test_a_new_utc_day_starts_from_zero_and_the_old_day_is_kept(pool) -> None:
    clock = Clock(date(2026, 12, 3))
    budget = DailyBudget(pool, 50, today=clock)
    await budget.reserve(50)
    with pytest.raises(SpeechUnavailable):
        await budget.reserve(1)

    clock.day = date(2026, 12, 4)
    assert await budget.spent_today() == 0
    await budget.reserve(20)
    assert await budget.spent_today() == 20

    rows = await pool.fetch("SELECT day, used_chars FROM budget_days ORDER BY day")
    assert [(r["day"], r["used_chars"]) for r in rows] == [(date(2026, 12, 3), 50), (date(2026, 12, 4), 20)]


async def test_another_replica_sees_the_same_budget(pool) -> None:
    day = Clock(date(2026, 12, 3))
    first, second = DailyBudget(pool, 30, today=day), DailyBudget(pool, 30, today=day)
    await first.reserve(20)
    with pytest.raises(SpeechUnavailable):
        await second.reserve(11)
    await second.reserve(10)
    assert await first.spent_today() == 30


async def test_a_limit_of_zero_turns_paid_speech_off(pool) -> None:
    budget = DailyBudget(pool, 0, today=Clock(date(2026, 12, 3)))
    with pytest.raises(SpeechUnavailable, match="budget"):
        await budget.reserve(1)
    await budget.reserve(0)  # nothing asked, nothing refused
