"""Entry point: `python -m watch_service` (or `workplace-watch`) serves the API and runs the
workers (WP_RUN_WORKERS=false serves the API only, WP_RUN_GRPC=false runs a worker alone);
`python -m watch_service build-index` refreshes the scenario scripts' embedding cache;
`python -m watch_service reencrypt` rewrites the stored turns under the current key."""

import asyncio
import sys
import time

from workplace_content import content
from workplace_content.dialogue import scenario_script
from workplace_kit.ai.offline_dialogue import write_vector_cache
from workplace_kit.config import load_settings
from workplace_kit.crypto import run_reencrypt
from workplace_kit.service import run_main

from .app import MIGRATIONS, build
from .repository import SEALED_COLUMNS
from .settings import VECTOR_CACHE, WatchSettings


def build_index() -> None:
    started = time.perf_counter()
    catalogue = content()
    count = write_vector_cache(VECTOR_CACHE, (scenario_script(s, catalogue) for s in catalogue.scenarios))
    print(f"wrote {count} vectors to {VECTOR_CACHE} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    if sys.argv[1:] == ["build-index"]:
        build_index()
        return
    if sys.argv[1:] == ["reencrypt"]:
        print(asyncio.run(run_reencrypt(load_settings(WatchSettings), "watch", SEALED_COLUMNS, MIGRATIONS)))
        return
    run_main(WatchSettings, build)


if __name__ == "__main__":
    main()
