"""Entry point: `python -m feedback_service` (or the `workplace-feedback` script)."""

from workplace_kit.service import run_main

from .app import build
from .settings import FeedbackSettings


def main() -> None:
    run_main(FeedbackSettings, build)


if __name__ == "__main__":
    main()
