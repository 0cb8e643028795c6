"""Move page traffic between the legacy Flask app and the new services (the canary), or back.

    task canary                 print the share of new traffic per split service
    task canary -- 10           10 % of browsers on the new pages (sticky per browser)
    task canary -- 0            rollback: every browser on the legacy app
    task canary -- 50 --kube --release workplace --namespace workplace

Locally it rewrites the gateway's run-time layer (.run/envoy-runtime), which Envoy reloads in
milliseconds. With --kube it sets the weight in each running gateway pod's admin layer first
(through the drain sidecar, which shares the pod's network: effective at once) and then in the
chart value gateway.canary.newPercent (helm upgrade --reuse-values: the runtime ConfigMap, for
pods started later and for every later upgrade). The weights' names: workplace_kit.canary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from localrt import DEFAULT, tcp_open  # noqa: E402
from workplace_kit import canary  # noqa: E402
from workplace_kit.registry import load  # noqa: E402

CHART = REPO / "deploy" / "helm" / "workplace"
ENVOY_ADMIN = "http://127.0.0.1:9901"  # deploy/envoy/envoy.yaml's admin, inside the gateway pod too
Runner = Callable[[Sequence[str]], str]


def _run(command: Sequence[str]) -> str:
    return subprocess.run(list(command), check=True, capture_output=True, text=True, timeout=300).stdout


def kube_commands(percent: int, release: str, namespace: str, pods: Sequence[str]) -> list[list[str]]:
    """What --kube runs, in order: each pod's admin layer (at once), then the chart value."""
    commands = [
        [
            *("kubectl", "exec", "--namespace", namespace, pod, "-c", "drain", "--"),
            *("python", "-m", "workplace_kit.canary", "set", str(percent), "--admin", ENVOY_ADMIN),
        ]
        for pod in pods
    ]
    commands.append(
        [
            *("helm", "upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values"),
            *("--set", f"gateway.canary.newPercent={percent}", "--wait"),
        ]
    )
    return commands


def gateway_pods(release: str, namespace: str, run: Runner = _run) -> list[str]:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=gateway"
    out = run(["kubectl", "get", "pods", "--namespace", namespace, "-l", selector, "-o", "name"])
    return [line.strip() for line in out.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("percent", nargs="?", type=int, help="share of new traffic, 0-100; none: show")
    parser.add_argument("services", nargs="*", help="only these split services (local only)")
    parser.add_argument("--kube", action="store_true", help="the cluster of the current kubectl context")
    parser.add_argument("--release", default="workplace")
    parser.add_argument("--namespace", default="workplace")
    args = parser.parse_args(argv)
    split = [s.name for s in load().services if any(r.canary for r in s.routes)]
    if args.percent is None:
        if args.kube:
            parser.error("--kube shows nothing: read the chart value (helm get values) or each pod's /runtime")
        print(json.dumps(canary.shares(canary.read_layer(DEFAULT.envoy_runtime), split)))
        return 0
    if not 0 <= args.percent <= 100:
        parser.error("the share is a whole percent from 0 to 100")
    started = time.monotonic()
    if args.kube:
        if args.services:
            parser.error("--kube sets every split service (the chart has one value)")
        for command in kube_commands(
            args.percent, args.release, args.namespace, gateway_pods(args.release, args.namespace)
        ):
            _run(command)
            print(f"{time.monotonic() - started:6.2f} s  {' '.join(command[:6])} ...", flush=True)
        return 0
    code = canary.main(["set", str(args.percent), *args.services, "--dir", str(DEFAULT.envoy_runtime)])
    if code == 0 and args.percent < 100 and not _legacy_answers():
        print(
            f"note: nothing answers on the legacy app's local port ({load().legacy.http_port}); "  # type: ignore[union-attr]
            "its share of the pages gets 503 until one does",
            file=sys.stderr,
        )
    return code


def _legacy_answers() -> bool:
    legacy = load().legacy
    return legacy is not None and tcp_open("127.0.0.1", legacy.http_port)


if __name__ == "__main__":
    raise SystemExit(main())
