"""No event lost: each fault of tests/resilience/chaos.py under a small load, against a second
copy of the platform (its own PostgreSQL, Redis, Pub/Sub emulator and services).

`task chaos` runs the same faults with larger loads and longer outages and prints the table.
"""

from __future__ import annotations

import pytest
from resilience.chaos import FAULTS, RECORDED, ChaosPlatform, Load, table

# Small enough for CI (each fault about 15-30 s), large enough that learners are mid-turn
# when the fault hits and that events queue up while it lasts.
LOAD = Load(learners=4, turns=3, think_s=0.8, down_s=5.0, settle_s=60.0)
# The longest a turn may wait for its analysis after the fault ended (measured here: 0-7 s; a
# restarted service spends most of that starting). What bounds it: a restarted service's start,
# a killed consumer's events coming back after the ack deadline (10 s), the outbox probing the
# broker every second while publishing fails, the consumer asking the database every second.
RECOVERY_BOUND_S = 20.0


@pytest.fixture(scope="module")
def platform():
    started = ChaosPlatform.start()
    yield started
    started.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_every_turn_is_analysed_exactly_once_after(platform, fault):
    verdict = await FAULTS[fault](platform, LOAD)
    RECORDED.append(verdict)  # tests/resilience/conftest.py prints them all at the end
    assert verdict.ok, "\n" + table([verdict])
    assert verdict.recovery_s is not None and verdict.recovery_s <= RECOVERY_BOUND_S, table([verdict])
