"""One origin in front of in-process services, as the gateway gives the browser: paths under a
service's prefix go to it, the rest to the pages (web). A test's browser then sends the
pages' cookies and CSRF header to auth exactly as it does through the gateway.

    async with same_origin({"/api/v2/auth/": auth.http_url}, default=web.http_url) as url: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .services import free_port

# Hop-by-hop headers (RFC 9110 7.6.1) and the body's framing, which the proxy sets anew.
_NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"})


@contextlib.asynccontextmanager
async def same_origin(routes: dict[str, str], *, default: str) -> AsyncIterator[str]:
    """Serve a proxy on a free port: a request whose path starts with a key of `routes` goes to
    that base URL, any other to `default`. Host and Origin are passed on unchanged (the
    services' CSRF check compares them), like every Set-Cookie of the answers."""
    # The proxy keeps no cookies of its own: each browser's go in its requests' Cookie header.
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(timeout=60, cookies=no_cookies) as client:

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            request = Request(scope, receive)
            path = request.url.path
            base = next((url for prefix, url in routes.items() if path.startswith(prefix)), default)
            upstream = await client.request(
                request.method,
                base + path,
                params=request.url.query,
                headers=[(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED],
                content=await request.body(),
            )
            response = Response(upstream.content, status_code=upstream.status_code)
            response.raw_headers = [
                (name, value)
                for name, value in upstream.headers.raw
                if name.decode("latin-1").lower() not in _NOT_FORWARDED | {"content-encoding"}
            ] + [(b"content-length", str(len(upstream.content)).encode())]
            await response(scope, receive, send)

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)
