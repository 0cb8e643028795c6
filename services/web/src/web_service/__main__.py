"""Entry point: `python -m web_service` (or the `workplace-web` script)."""

from workplace_kit.service import run_main

from .app import build
from .settings import WebSettings


def main() -> None:
    run_main(WebSettings, build)


if __name__ == "__main__":
    main()
