"""``meter proxy``: a metering reverse proxy for clients that cannot pass an http client.

Point any client (any language, curl) at the proxy instead of the resource; it
forwards every request through ``meter.AsyncMeteredTransport`` and relays the
answer unchanged, streams chunk by chunk. ``create_proxy_app`` gives the ASGI
app, ``ProxyServer`` runs it in a background thread, ``add_command`` adds the
``meter proxy`` sub-command.
"""

from __future__ import annotations

from collections.abc import Iterable

from meter.apps.proxy.app import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_REQUEST_BYTES, ProxyApp
from meter.apps.proxy.cli import add_command
from meter.apps.proxy.server import ProxyServer
from meter.hub import Meter

__all__ = ["ProxyApp", "ProxyServer", "add_command", "create_proxy_app"]


def create_proxy_app(upstream: str, meter: Meter | None = None, max_concurrency: int = 64,
                     connect_timeout: float = 10.0, read_timeout: float = 300.0, *, queue_timeout: float = 60.0,
                     max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, body_timeout: float = DEFAULT_BODY_TIMEOUT,
                     allowed_hosts: Iterable[str] | None = None) -> ProxyApp:
    """The proxy as an ASGI app, to serve with any ASGI server (see ``ProxyApp`` for the behaviour).

    Serve it the way ``ProxyServer`` does (``meter.apps.proxy.server.uvicorn_config``) or, under another
    server, turn off that server's access log (it would print query strings) and its own headers, cap
    its request head at ``meter.apps.proxy.headers.MAX_HEADERS_TOTAL_BYTES`` and bound the time to receive
    one, and have it refuse obs-fold header lines: the app refuses ``Content-Length`` with
    ``Transfer-Encoding`` itself, but never sees a folded line (servers unfold them).
    """
    return ProxyApp(upstream, meter, max_concurrency=max_concurrency, connect_timeout=connect_timeout,
                    read_timeout=read_timeout, queue_timeout=queue_timeout, max_request_bytes=max_request_bytes,
                    body_timeout=body_timeout, allowed_hosts=allowed_hosts)
