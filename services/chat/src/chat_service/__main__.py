"""Entry point: `python -m chat_service` (or the `workplace-chat` script)."""

from workplace_kit.service import run_main

from .app import build
from .settings import ChatSettings


def main() -> None:
    run_main(ChatSettings, build)


if __name__ == "__main__":
    main()
