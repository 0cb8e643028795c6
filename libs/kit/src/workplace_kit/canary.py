"""The canary from the legacy Flask app: the gateway's run-time weights, one place for their names.

The gateway (deploy/envoy/envoy.yaml, generated from the registry) splits each route marked
`canary` between its service and the `legacy` cluster with Envoy weighted clusters whose weights
are run-time keys, `gateway.canary.<service>.<service>_http` and `gateway.canary.<service>.legacy`
(Envoy's `runtime_key_prefix`). The choice is sticky per browser: a hash of the `wp_canary`
cookie, which the gateway hands out on the first request, so a learner stays on one app while the
share grows (1 % → 10 % → 50 % → 100 %) and moves back in one step on a rollback.
`gateway.legacy.api` (0 or 100) sends the legacy app's own paths to it while it takes any share.

Where the weights live:
- a disk layer of Envoy's runtime, a directory swapped the way Kubernetes swaps a mounted
  ConfigMap (`..data` -> a new version directory, renamed into place), which Envoy watches and
  reloads without a restart: `.run/envoy-runtime` locally, the gateway's runtime ConfigMap in
  the cluster;
- Envoy's admin layer (`POST /runtime_modify`), which takes effect at once in a running pod
  (a mounted ConfigMap reaches a pod only after the kubelet's sync, up to a minute or two).

    python -m workplace_kit.canary set 10 --dir .run/envoy-runtime     # 10 % of the pages new
    python -m workplace_kit.canary set 0 --admin http://127.0.0.1:9901 # rollback, this Envoy
    python -m workplace_kit.canary show --dir .run/envoy-runtime
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

RUNTIME_PREFIX = "gateway.canary"
LEGACY_CLUSTER = "legacy"
LEGACY_API_KEY = "gateway.legacy.api"
STICKY_COOKIE = "wp_canary"
STICKY_COOKIE_MAX_AGE_S = 30 * 24 * 3600
# The directory name Kubernetes gives the current version of a mounted ConfigMap; Envoy's disk
# layer watches it for a rename (symlink_root), locally as in the cluster.
CURRENT = "..data"


class CanaryError(ValueError):
    """A weight or service that cannot be set; the message says which."""


def split_prefix(service: str) -> str:
    """Envoy's runtime_key_prefix of the service's split routes."""
    return f"{RUNTIME_PREFIX}.{service}"


def new_cluster(service: str) -> str:
    return f"{service}_http"


def runtime_values(new_percent: Mapping[str, int]) -> dict[str, str]:
    """Every run-time key for these shares of new traffic (percent per canary service)."""
    values: dict[str, str] = {}
    for service, percent in sorted(new_percent.items()):
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise CanaryError(f"{service}: the new share is a whole percent from 0 to 100, not {percent!r}")
        values[f"{split_prefix(service)}.{new_cluster(service)}"] = str(percent)
        values[f"{split_prefix(service)}.{LEGACY_CLUSTER}"] = str(100 - percent)
    values[LEGACY_API_KEY] = "100" if any(p < 100 for p in new_percent.values()) else "0"
    return values


def shares(values: Mapping[str, str], services: Iterable[str]) -> dict[str, int]:
    """The new share per service that `values` hold (100 where a key is missing: the default)."""
    result = {}
    for service in services:
        new = int(values.get(f"{split_prefix(service)}.{new_cluster(service)}", 100))
        old = int(values.get(f"{split_prefix(service)}.{LEGACY_CLUSTER}", 100 - new))
        result[service] = round(100 * new / (new + old)) if new + old else 100
    return result


def write_layer(directory: Path, values: Mapping[str, str]) -> Path:
    """Make `values` the layer's current version in one rename (what Envoy reloads on)."""
    directory.mkdir(parents=True, exist_ok=True)
    version = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9:09d}"
    version.mkdir()
    for key, value in values.items():
        (version / key).write_text(value)
    link = directory / "..data_tmp"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(version.name)
    os.replace(link, directory / CURRENT)
    for old in directory.iterdir():
        if old.name.startswith("..") and old.is_dir() and not old.is_symlink() and old != version:
            shutil.rmtree(old, ignore_errors=True)
    return version


def read_layer(directory: Path) -> dict[str, str]:
    current = directory / CURRENT
    if not current.exists():
        return {}
    return {f.name: f.read_text().strip() for f in current.iterdir() if f.is_file()}


def push_admin(admin_url: str, values: Mapping[str, str], timeout_s: float = 5) -> None:
    """Set the keys in a running Envoy's admin layer: effective for its next request."""
    query = urllib.parse.urlencode(dict(values))
    request = urllib.request.Request(f"{admin_url.rstrip('/')}/runtime_modify?{query}", method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        answer.read()


def main(argv: list[str] | None = None) -> int:
    from .registry import load

    canary_services = [s.name for s in load().services if any(r.canary for r in s.routes)]
    parser = argparse.ArgumentParser(prog="python -m workplace_kit.canary", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    set_parser = commands.add_parser("set", help="set the share of new traffic (percent)")
    set_parser.add_argument("percent", type=int)
    set_parser.add_argument("services", nargs="*", help=f"default: every split service ({', '.join(canary_services)})")
    show_parser = commands.add_parser("show", help="print the shares a layer holds")
    for sub in (set_parser, show_parser):
        sub.add_argument("--dir", type=Path, help="the runtime disk layer's directory")
        sub.add_argument("--admin", help="a running Envoy's admin URL (its admin layer)")
    args = parser.parse_args(argv)
    if not (args.dir or args.admin):
        parser.error("give --dir, --admin or both")
    try:
        if args.command == "show":
            values = read_layer(args.dir) if args.dir else _admin_values(args.admin)
            print(json.dumps(shares(values, canary_services)))
            return 0
        unknown = set(args.services) - set(canary_services)
        if unknown:
            raise CanaryError(f"no split routes for {sorted(unknown)} (split: {', '.join(canary_services)})")
        current = shares(read_layer(args.dir), canary_services) if args.dir else dict.fromkeys(canary_services, 100)
        current.update(dict.fromkeys(args.services or canary_services, args.percent))
        values = runtime_values(current)
        if args.dir:
            write_layer(args.dir, values)
        if args.admin:
            push_admin(args.admin, values)
        print(json.dumps(current))
        return 0
    except (CanaryError, OSError) as error:
        print(f"canary: {error}", file=sys.stderr)
        return 2


def _admin_values(admin_url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{admin_url.rstrip('/')}/runtime", timeout=5) as answer:
        entries = json.loads(answer.read()).get("entries", {})
    return {key: entry.get("final_value", "") for key, entry in entries.items()}


if __name__ == "__main__":
    raise SystemExit(main())
