"""AI call metrics shared by every service that talks to an AI engine (alerts on quota and
overload read these: a streamed reply's failure never shows in the HTTP status)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

AI_REPLIES = Counter(
    "workplace_ai_replies_total",
    "AI replies by engine and outcome (ok, cached, unavailable: quota, overload or timeout after retries)",
    ["engine", "outcome"],
)
AI_FIRST_TOKEN_SECONDS = Histogram(
    "workplace_ai_first_token_seconds",
    "Time from asking the engine to its first chunk",
    ["engine"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
