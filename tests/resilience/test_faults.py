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
# From the fault's end to the last turn analysed. What bounds it: a killed consumer's messages
# come back after the subscription's ack deadline (10 s); retries back off up to a few seconds.
RECOVERY_BOUND_S = 30.0


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
