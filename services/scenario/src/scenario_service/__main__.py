"""Entry point: `python -m scenario_service` (or `workplace-scenario`) serves;
`python -m scenario_service build-index` refreshes the scenario scripts' embedding cache;
`python -m scenario_service reencrypt` rewrites the stored turns under the current key."""

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
from .settings import VECTOR_CACHE, ScenarioSettings


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
        print(asyncio.run(run_reencrypt(load_settings(ScenarioSettings), "scenario", SEALED_COLUMNS, MIGRATIONS)))
        return
    run_main(ScenarioSettings, build)


if __name__ == "__main__":
    main()
