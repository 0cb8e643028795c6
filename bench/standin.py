#!/usr/bin/env python3
"""The Gemini wire-format stand-in (tests/contract/gemini_standin.py) as a benchmark process:
the same server, the same flags, with its request log kept to the last 100 requests.

The stand-in records every request (path, headers, parsed JSON body) for test assertions.
Over a benchmark that is tens of thousands of bodies: hundreds of MB, and Python's full garbage
collections then pause the stand-in (measured: ~0.3 s at 10k requests, ~0.9 s at 30k),
stalling every reply it streams at that moment, platform and floor alike. bench/full_platform.py
runs this; `--standin-as-is` there runs tests/contract/gemini_standin.py itself instead.

    .venv/bin/python bench/standin.py --port 8099 --first-token-delay-ms 300 --chunks 20 --inter-chunk-delay-ms 40
"""

import argparse
import collections
import sys
from pathlib import Path

import uvicorn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "contract"))
from gemini_standin import GeminiStandIn  # noqa: E402 - after the path above


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--first-token-delay-ms", type=float, default=0)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--inter-chunk-delay-ms", type=float, default=0)
    parser.add_argument("--keep-requests", type=int, default=100, help="how many recorded requests to keep")
    args = parser.parse_args()
    stand_in = GeminiStandIn(
        host=args.host,
        port=args.port,
        first_token_delay_ms=args.first_token_delay_ms,
        chunks=args.chunks,
        inter_chunk_delay_ms=args.inter_chunk_delay_ms,
    )
    # A bounded log: list() of it, append and clear() behave as the list's do.
    stand_in._requests = collections.deque(maxlen=args.keep_requests)  # type: ignore[assignment]
    print(f"Gemini stand-in (bounded request log) on http://{args.host}:{args.port}", flush=True)
    # As gemini_standin.py's own command line runs it.
    uvicorn.run(stand_in.app, host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
