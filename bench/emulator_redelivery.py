#!/usr/bin/env python3
"""How long messages take to reach a restarted consumer after the previous one was SIGKILLed,
on the Pub/Sub emulator: the client library's streaming pull against unary pull (the kit's).

Modes: `streaming` (the client library's streaming pull), `long-poll` (unary pulls that wait
for messages), `poll` (unary pulls that return at once, every 0.1 s when idle: the kit's
choice against the emulator). For each: a consumer process pulls a fresh subscription and is SIGKILLed; 100 messages
are published; a new consumer process starts a second later. The table shows how many of the
100 it has received after 5, 10, 30, 60 s and at the end, and when the last one came.

    .venv/bin/python bench/emulator_redelivery.py [--messages 100] [--wait 150] [--ack-deadline 10]

Needs the emulator of `task infra` (PUBSUB_EMULATOR_HOST from .run/env). Why it matters: the
emulator does not notice that a streaming pull's client died; it keeps handing messages to
the dead stream, and they come back only when that stream's ack deadline runs out (60 s, the
client's default), possibly to the dead stream again. A waiting unary pull that died gets the
first batch, which comes back after the subscription's ack deadline; a poll that returns at
once leaves nothing waiting behind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = "workplace-local"

CONSUMER = r"""
import sys
from google.cloud import pubsub_v1
mode, path = sys.argv[1], sys.argv[2]
client = pubsub_v1.SubscriberClient()
if mode == "streaming":
    def received(message):
        print(message.data.decode(), flush=True)
        message.ack()
    client.subscribe(path, received).result()
else:
    import time
    poll = mode == "poll"
    while True:
        try:
            response = client.pull(
                request={"subscription": path, "max_messages": 32, "return_immediately": poll}, timeout=20
            )
        except Exception:
            continue
        if poll and not response.received_messages:
            time.sleep(0.1)
        ack_ids = []
        for m in response.received_messages:
            print(m.message.data.decode(), flush=True)
            ack_ids.append(m.ack_id)
        if ack_ids:
            client.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
"""


def run(mode: str, messages: int, wait_s: float, ack_deadline: int) -> dict:
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"bench-redelivery-{uuid.uuid4().hex[:8]}"
    topic, sub = publisher.topic_path(PROJECT, name), subscriber.subscription_path(PROJECT, name)
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={"name": sub, "topic": topic, "ack_deadline_seconds": ack_deadline})
    argv = [sys.executable, "-c", CONSUMER, mode, sub]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # its pull is open
    first.kill()
    first.wait()
    started = time.monotonic()
    for i in range(messages):
        publisher.publish(topic, f"m{i}".encode()).result()
    time.sleep(1)
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrived: dict[str, float] = {}

    def read() -> None:
        for line in second.stdout:
            arrived.setdefault(line.strip(), time.monotonic() - started)

    threading.Thread(target=read, daemon=True).start()
    while time.monotonic() - started < wait_s and len(arrived) < messages:
        time.sleep(0.25)
    second.kill()
    second.wait()
    subscriber.delete_subscription(request={"subscription": sub})
    publisher.delete_topic(request={"topic": topic})
    times = sorted(arrived.values())
    return {
        "mode": mode,
        "marks": {s: sum(1 for t in times if t <= s) for s in (5, 10, 30, 60)},
        "end": len(times),
        "last": times[-1] if times else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--wait", type=float, default=150.0, help="seconds to wait for them all")
    parser.add_argument("--ack-deadline", type=int, default=10, help="the subscription's, in seconds")
    args = parser.parse_args()
    if not os.environ.get("PUBSUB_EMULATOR_HOST"):
        print("PUBSUB_EMULATOR_HOST is not set: `set -a; . .run/env; set +a` after `task infra`", file=sys.stderr)
        return 2
    print(f"{args.messages} messages published after the consumer was SIGKILLed; a new consumer 1 s later")
    print("| pull | by 5 s | by 10 s | by 30 s | by 60 s | at the end | last arrived |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("streaming", "long-poll", "poll"):
        r = run(mode, args.messages, args.wait, args.ack_deadline)
        last = f"{r['last']:.1f} s" if r["last"] is not None else "-"
        marks = " | ".join(str(r["marks"][s]) for s in (5, 10, 30, 60))
        print(f"| {mode} | {marks} | {r['end']} (after {args.wait:g} s) | {last} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
