"""Entry point: `python -m tts_service` (or `workplace-tts`)."""

from workplace_kit.service import run_main

from .app import build
from .settings import TtsSettings


def main() -> None:
    run_main(TtsSettings, build)


if __name__ == "__main__":
    main()
