"""Pub/Sub administration from the command line: the same code the services run.

    python -m workplace_kit.pubsub provision                # declare every topic and subscription
    python -m workplace_kit.pubsub dead-letters             # what waits on each dead-letter queue
    python -m workplace_kit.pubsub replay SUBSCRIPTION [--limit N]

Settings come from the environment like a service's (WP_PUBSUB_PROJECT, WP_PUBSUB_NAME_SUFFIX,
PUBSUB_EMULATOR_HOST or Google credentials). `task up` and the test run call `provision`
(scripts/localrt.py); in a cluster the Helm chart's pre-install/pre-upgrade job can
(deploy/helm/workplace/templates/pubsub-provision.yaml), while production declares the topology
as Config Connector resources (deploy/cloud/config-connector). `task dlq:list` and `task dlq:replay --
SUBSCRIPTION` call the others; in the cluster run them in a pod of the consuming service
(deploy/prometheus/RUNBOOK.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .bus import EventBus
from .config import ConfigError, ServiceSettings, load_settings
from .topology import DEFAULT


class _Settings(ServiceSettings):
    service_name: str = "pubsub-admin"


async def _run(args: argparse.Namespace, settings: ServiceSettings) -> int:
    topology = DEFAULT.with_suffix(settings.pubsub_name_suffix)
    bus = EventBus(settings.pubsub_project, service_name=settings.service_name, topology=topology)
    try:
        if args.command == "provision":
            created = await bus.provision()
            print(f"{len(created)} created" + (": " + ", ".join(created) if created else " (all existed)"))
        elif args.command == "dead-letters":
            for spec in topology.subscriptions:
                count = await bus.dead_letters(spec.name)
                print(f"{topology.name(spec.dead_letter_subscription)}\t{count}")
        elif args.command == "replay":
            names = [s.name for s in topology.subscriptions]
            if args.subscription not in names:
                print(f"unknown subscription {args.subscription!r}; one of: {', '.join(names)}", file=sys.stderr)
                return 2
            replayed = await bus.replay_dead_letters(args.subscription, limit=args.limit)
            print(f"replayed {replayed} event(s) from {topology.name(args.subscription)}.dlq")
    finally:
        await bus.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workplace_kit.pubsub", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("provision", help="declare every topic and subscription (idempotent)")
    commands.add_parser("dead-letters", help="count what waits on each dead-letter subscription")
    replay = commands.add_parser("replay", help="republish a subscription's dead letters to its topic")
    replay.add_argument("subscription", help="e.g. feedback.conversation-turns")
    replay.add_argument("--limit", type=int, default=None, help="at most this many")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(_Settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, settings))
    except Exception as exc:  # noqa: BLE001 - a clear line, not a trace, for the operator
        print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
