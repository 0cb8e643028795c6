"""Entry point: `python -m feedback_service` (or the `workplace-feedback` script) serves;
`python -m feedback_service reencrypt` rewrites the stored analyses under the current key."""

import asyncio
import sys

from workplace_kit.config import load_settings
from workplace_kit.crypto import run_reencrypt
from workplace_kit.service import run_main

from .app import MIGRATIONS, build
from .repository import SEALED_COLUMNS
from .settings import FeedbackSettings


def main() -> None:
    if sys.argv[1:] == ["reencrypt"]:
        print(asyncio.run(run_reencrypt(load_settings(FeedbackSettings), "feedback", SEALED_COLUMNS, MIGRATIONS)))
        return
    run_main(FeedbackSettings, build)


if __name__ == "__main__":
    main()
