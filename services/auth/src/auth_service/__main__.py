"""Entry point: `python -m auth_service` serves; `python -m auth_service rotate-keys` makes a new
signing key (the old one stays published until the tokens it signed have expired)."""

import asyncio
import sys
from contextlib import AsyncExitStack

from workplace_kit.config import load_settings
from workplace_kit.db import create_pool
from workplace_kit.service import run_main

from .app import build
from .keys import KeyStore
from .settings import AuthSettings


async def _rotate() -> str:
    settings = load_settings(AuthSettings)
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings.database_url, schema="auth")
        stack.push_async_callback(pool.close)
        return await KeyStore(pool, token_ttl_s=settings.access_token_ttl_s).rotate()


def main() -> None:
    if sys.argv[1:] == ["rotate-keys"]:
        print(f"new signing key: {asyncio.run(_rotate())}")
        return
    run_main(AuthSettings, build)


if __name__ == "__main__":
    main()
