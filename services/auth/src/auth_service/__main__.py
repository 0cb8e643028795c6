"""Entry point: `python -m auth_service` serves; `python -m auth_service rotate-keys` makes a new
signing key (the old one stays published until the tokens it signed have expired);
`python -m auth_service reencrypt` rewrites the stored personal data under the current key;
`python -m auth_service migrate-legacy [--dry-run]` moves the legacy Flask app's sessions
(legacy_batch.py)."""

import asyncio
import sys
from contextlib import AsyncExitStack

from workplace_kit.config import load_settings
from workplace_kit.crypto import open_cipher, run_reencrypt
from workplace_kit.db import create_pool
from workplace_kit.service import run_main

from .app import MIGRATIONS, build
from .keys import PRIVATE_PEM, KeyStore
from .legacy import LEGACY_HISTORY_ENTRIES
from .legacy_batch import main as migrate_legacy
from .repository import DISPLAY_NAME, EMAIL
from .settings import AuthSettings


async def _rotate() -> str:
    settings = load_settings(AuthSettings)
    async with AsyncExitStack() as stack:
        pool = await create_pool(settings.database_url, schema="auth")
        stack.push_async_callback(pool.close)
        cipher = await open_cipher(pool, settings)
        return await KeyStore(pool, cipher=cipher, token_ttl_s=settings.access_token_ttl_s).rotate()


def main() -> None:
    if sys.argv[1:] == ["reencrypt"]:
        columns = (EMAIL, DISPLAY_NAME, PRIVATE_PEM, LEGACY_HISTORY_ENTRIES)
        print(asyncio.run(run_reencrypt(load_settings(AuthSettings), "auth", columns, MIGRATIONS)))
        return
    if sys.argv[1:2] == ["migrate-legacy"]:
        sys.exit(asyncio.run(migrate_legacy(sys.argv[2:])))
    if sys.argv[1:] == ["rotate-keys"]:
        print(f"new signing key: {asyncio.run(_rotate())}")
        return
    run_main(AuthSettings, build)


if __name__ == "__main__":
    main()
