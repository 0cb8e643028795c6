"""Print the fault table at the end of the run (tests/resilience/test_faults.py fills it)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    from resilience.chaos import RECORDED, table

    if RECORDED:
        terminalreporter.section("faults: every turn analysed exactly once")
        terminalreporter.write_line(table(RECORDED))
