"""Serving the proxy with uvicorn: in a background thread (``ProxyServer``) or in the foreground (the CLI).

uvicorn is told to add nothing: no ``server`` or ``date`` header (the upstream's
own pass through) and no access log, since uvicorn's would print query
strings; the proxy writes its own access line (logger ``meter.proxy``).
uvicorn is imported only when a server starts, so ``meter --help`` works
without it (it comes with ``pip install meter[proxy]``, with httptools). The HTTP
protocol is named, not left to what is installed: ``meter.apps.proxy.protocol``
(httptools, strict framing, a bound on every request head's size and time). No
websockets (``ws="none"``: nothing is upgraded) and no ``X-Forwarded-*`` rewriting of
the client address (``proxy_headers=False``: the proxy never uses it).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from meter.apps.background import BackgroundServer
from meter.apps.proxy.app import ProxyApp
from meter.apps.proxy.headers import DEFAULT_HEAD_TIMEOUT
from meter.hub import Meter

if TYPE_CHECKING:
    import uvicorn

GRACEFUL_SHUTDOWN_S = 5.0


def uvicorn_config(app: ProxyApp, head_timeout: float = DEFAULT_HEAD_TIMEOUT, **options: Any) -> uvicorn.Config:
    """uvicorn settings that keep the proxy transparent, quiet about secrets, strict about framing and heads."""
    from meter.extras import require

    require("proxy", "the meter proxy server")
    import uvicorn

    from meter.apps.proxy.protocol import proxy_protocol

    return uvicorn.Config(app, access_log=False, server_header=False, date_header=False, lifespan="on",
                          timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S), http=proxy_protocol(head_timeout),
                          ws="none", proxy_headers=False, **options)


class ProxyServer:
    """A running proxy on ``host:port`` in a background thread; a context manager, for tests and embedding.

    ``port=0`` picks a free port; ``url`` is the address to point clients at.
    ``head_timeout`` bounds the time to receive each request head (the
    connection is then closed). Keyword ``options`` go to ``ProxyApp``
    (``max_concurrency``, ``connect_timeout``, ``read_timeout``, ``queue_timeout``,
    ``max_request_bytes``, ``body_timeout``, ``transport``, ``allowed_hosts``).
    It does not touch logging configuration (uvicorn's ``log_config`` is off).
    """

    def __init__(self, upstream: str, meter: Meter | None = None, host: str = "127.0.0.1", port: int = 0,
                 head_timeout: float = DEFAULT_HEAD_TIMEOUT, **options: Any) -> None:
        if head_timeout <= 0:
            raise ValueError("head_timeout must be positive")
        self.app = ProxyApp(upstream, meter, **options)
        self.host = host
        self.port = port
        self.head_timeout = head_timeout
        self._background = BackgroundServer(lambda: uvicorn_config(self.app, head_timeout, log_config=None), host,
                                            port, "meter-proxy", join_timeout_s=GRACEFUL_SHUTDOWN_S + 5)

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return self._background.url

    @property
    def meter(self) -> Meter:
        return self.app.meter

    def start(self) -> Self:
        self._background.start()
        self.port = self._background.port
        return self

    def stop(self) -> None:
        self._background.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
