"""This test run's identity: names of Pub/Sub topics and subscriptions get its suffix, so
runs never share broker state."""

from __future__ import annotations

import uuid

RUN_ID = uuid.uuid4().hex[:8]
# Every in-process service of the run uses it unless a test names another (tests/support/services.py):
# instances of one service share its outbox table, and a relay with another suffix would
# publish the others' events where their consumers never look.
PUBSUB_SUFFIX = f".t{RUN_ID}"
