"""What the platform is for, counted where it happens: practice sessions started and ended, and
feedback made ready for a learner (the design's sessions per day, completion rate and feedback
delivered; dashboard workplace-business in deploy/grafana, recording rules workplace.business.*).

- ``workplace_sessions_started_total{mode}``: a session stored for the first time; mode is the
  service that runs it (chat: free chat, scenario: a roleplay, watch: a watched dialogue).
- ``workplace_sessions_ended_total{mode, outcome}``: a session that ended (counted once, by the
  call that ended it), outcome from its end reason by ``outcome_of``:
  completed (it reached its end: a roleplay's goal, a watched dialogue's natural end or turn
  limit, a free chat the learner closed, which is how a free chat ends and brings its report),
  timeout (a roleplay out of turns before its goal), abandoned (stopped by the learner before
  its end, or nobody watching), error.
  A session never ended (the learner left) is not counted here: completion rate is completed
  over started.
- ``workplace_feedback_delivered_total{kind}``: feedback stored for the learner and announced,
  kind analysis (a turn's analysis and card, feedback.ready to the learner's stream) or report
  (a session's coaching report).

Every label value is created at import as 0, so ``increase()`` sees a pod's first session too.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter

Mode = Literal["chat", "scenario", "watch"]
MODES: tuple[Mode, ...] = ("chat", "scenario", "watch")
OUTCOMES = ("completed", "timeout", "abandoned", "error")
FEEDBACK_KINDS = ("analysis", "report")

SESSIONS_STARTED = Counter("workplace_sessions_started", "Practice sessions started, by mode", ["mode"])
SESSIONS_ENDED = Counter(
    "workplace_sessions_ended",
    "Practice sessions ended, by mode and outcome (completed, timeout, abandoned, error)",
    ["mode", "outcome"],
)
FEEDBACK_DELIVERED = Counter(
    "workplace_feedback_delivered",
    "Feedback made ready for a learner: a turn's analysis (announced on feedback.ready) or a session's report",
    ["kind"],
)

# End reasons (SessionEnded.reason, watch's ended_reason) -> outcome, per mode.
_OUTCOMES: dict[Mode, dict[str, str]] = {
    "chat": {"user": "completed"},
    "scenario": {"completed": "completed", "timeout": "timeout", "user": "abandoned"},
    "watch": {
        "finished": "completed",
        "max_turns": "completed",
        "stopped": "abandoned",
        "no_viewer": "abandoned",
        "error": "error",
    },
}

for _mode in MODES:
    SESSIONS_STARTED.labels(_mode)
    for _outcome in OUTCOMES:
        SESSIONS_ENDED.labels(_mode, _outcome)
for _kind in FEEDBACK_KINDS:
    FEEDBACK_DELIVERED.labels(_kind)


def outcome_of(mode: Mode, reason: str) -> str:
    """The outcome an end reason counts as (an unknown reason: abandoned)."""
    return _OUTCOMES[mode].get(reason, "abandoned")


def session_started(mode: Mode) -> None:
    SESSIONS_STARTED.labels(mode).inc()


def session_ended(mode: Mode, reason: str) -> None:
    SESSIONS_ENDED.labels(mode, outcome_of(mode, reason)).inc()


def feedback_delivered(kind: Literal["analysis", "report"]) -> None:
    FEEDBACK_DELIVERED.labels(kind).inc()
