"""Entry point: `python -m chat_service` (or the `workplace-chat` script) serves;
`python -m chat_service reencrypt` rewrites the stored messages under the current key;
`python -m chat_service build-index` refreshes the free-chat content's embedding cache
(`ask MESSAGE` prints the offline partner's reply)."""

import asyncio
import sys

from workplace_kit.ai.offline_dialogue import dialogue_cli
from workplace_kit.config import load_settings
from workplace_kit.crypto import run_reencrypt
from workplace_kit.service import run_main

from .app import MIGRATIONS, build, chat_catalogue
from .repository import SEALED_COLUMNS
from .settings import ChatSettings


def main() -> None:
    if sys.argv[1:] == ["reencrypt"]:
        print(asyncio.run(run_reencrypt(load_settings(ChatSettings), "chat", SEALED_COLUMNS, MIGRATIONS)))
        return
    if sys.argv[1:2] in (["build-index"], ["ask"]):
        dialogue_cli(sys.argv[1:], lambda _folder: chat_catalogue(), "python -m chat_service")
        return
    run_main(ChatSettings, build)


if __name__ == "__main__":
    main()
