"""Entry point: `python -m chat_service` (or the `workplace-chat` script)."""

from __future__ import annotations

from workplace_kit.config import load_settings
from workplace_kit.service import run_service

from .app import build
from .settings import ChatSettings


def main() -> None:
    settings = load_settings(ChatSettings)

    async def setup(stack):
        parts, _ = await build(stack, settings)
        return parts

    run_service(settings, setup)


if __name__ == "__main__":
    main()
