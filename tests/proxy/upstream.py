"""A scripted upstream for what the emulator cannot show: exact bytes, gzip, and an endless stream.

``/fixed``: a fixed gzip-encoded JSON body with hop-by-hop and repeated headers
(byte-for-byte transparency). ``/echo``: the request as received, as JSON
(which headers the proxy forwarded). ``/cut``: a body cut short. ``/openai/deployments/big/chat/completions``:
a chat SSE stream of ``BIG_EVENT`` frames up to ``BIG_TOTAL`` bytes, counting
what it handed to its server (``sent``) and noticing the proxy hanging up
(``hung_up``); uvicorn's ``send`` waits while its socket is full, so ``sent``
is what left the upstream, give or take its 64 KiB write buffer.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from meter.apps.background import bind
from meter.apps.proxy.asgi import Receive, Scope, Send, wait_for_disconnect

FIXED_JSON = json.dumps({"id": "fixed-1", "object": "thing", "data": ["x" * 200] * 20}).encode()
FIXED_GZIP = gzip.compress(FIXED_JSON, mtime=0)
FIXED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-encoding", b"gzip"),
    (b"content-length", str(len(FIXED_GZIP)).encode()),
    (b"x-custom", b"one"),
    (b"set-cookie", b"a=1; Path=/"),
    (b"set-cookie", b"b=2; Path=/"),
    (b"connection", b"x-hop"),
    (b"x-hop", b"must-not-pass"),
    (b"keep-alive", b"timeout=5"),
    (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
    (b"server", b"scripted-upstream"),
]
BIG_EVENT = (b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'
             + b"x" * 16000 + b'"}}]}\n\n')
BIG_TOTAL = 512 * 1024 * 1024


class ScriptedUpstream:
    """The scripted upstream on a loopback port, in a background thread (a context manager)."""

    def __init__(self) -> None:
        self.sent = 0
        self.hung_up = threading.Event()
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/fixed":
            await send({"type": "http.response.start", "status": 200, "headers": FIXED_HEADERS})
            await send({"type": "http.response.body", "body": FIXED_GZIP})
        elif scope["path"].startswith("/echo"):
            echoed = {"method": scope["method"], "path": scope["raw_path"].decode(),
                      "query": scope["query_string"].decode(), "body": body.decode(),
                      "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]]}
            data = json.dumps(echoed).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": data})
        elif scope["path"] == "/cut":  # promises 1000 bytes, sends 10, hangs up
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
        elif scope["path"].endswith("/big/chat/completions"):
            await self._big(receive, send)
        else:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})

    async def _big(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        watch = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            while self.sent < BIG_TOTAL:
                await send({"type": "http.response.body", "body": BIG_EVENT, "more_body": True})
                self.sent += len(BIG_EVENT)
                await asyncio.sleep(0)  # let the server notice a lost connection (send alone may never yield)
                if watch.done():
                    self.hung_up.set()
                    return
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        finally:
            watch.cancel()

    def __enter__(self) -> Self:
        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self, lifespan="off", log_config=None, access_log=False,
                                               server_header=False, date_header=False, timeout_graceful_shutdown=1))
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not server.started:
            time.sleep(0.005)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=5)

