"""``meter.wrap``: meter an existing client in place, keeping all its settings.

Swapping the transports inside the client (its default transport and every
mounted one, which is where proxies live) keeps timeouts, limits, auth, event
hooks and base URL exactly as the user configured them. Transports that are
already metered are left alone, so wrapping twice never meters twice; and a
metered transport nested inside another passes requests through (see
``transport._metering``), so a wrapper that hides a metered transport does not
count twice either.
"""

from __future__ import annotations

from typing import Any, TypeVar

from meter.adapters.transport import AsyncMeteredTransport, MeteredTransport
from meter.hub import Meter, default_meter

T = TypeVar("T")


def _stack_classes(obj: Any) -> list[str]:
    """Names of the httpx/httpx2 classes ``obj`` is built on (subclasses such as the SDK's count)."""
    return [c.__name__ for c in type(obj).__mro__ if c.__module__.split(".", 1)[0] in ("httpx", "httpx2")]


def _is_async_client(client: Any) -> bool:
    return "AsyncClient" in _stack_classes(client)


def _metered(transport: Any, is_async: bool, meter: Meter | None) -> Any:
    if transport is None or isinstance(transport, MeteredTransport | AsyncMeteredTransport):
        return transport
    return AsyncMeteredTransport(transport, meter) if is_async else MeteredTransport(transport, meter)


def _check_same_meter(transports: list[Any], meter: Meter | None) -> None:
    """Refuse to move a metered client to another meter: records would silently change hands."""
    if meter is None:
        return
    for transport in transports:
        if isinstance(transport, MeteredTransport | AsyncMeteredTransport):
            current = transport.meter or default_meter()
            if current is not meter:
                raise ValueError(
                    "meter.wrap(): this client is already metered by another Meter; its records keep going "
                    "there. Wrap a new client for the other meter (a client is metered by one Meter).")


def _wrap_http_client(client: Any, meter: Meter | None) -> None:
    is_async = _is_async_client(client)
    mounts = getattr(client, "_mounts", None) or {}
    _check_same_meter([client._transport, *mounts.values()], meter)  # before any change: all or nothing
    client._transport = _metered(client._transport, is_async, meter)
    for pattern, transport in list(mounts.items()):
        mounts[pattern] = _metered(transport, is_async, meter)


def _is_http_client(obj: Any) -> bool:
    names = _stack_classes(obj)
    return ("Client" in names or "AsyncClient" in names) and hasattr(obj, "_transport")


def wrap(client: T, meter: Meter | None = None) -> T:
    """Meter ``client`` and return it.

    ``client`` is an ``openai`` client (``OpenAI``, ``AzureOpenAI``, sync or
    async; its http client is metered) or an ``httpx`` / ``httpx2`` client, sync
    or async. ``meter`` defaults to the process-wide default meter.

    Wrapping an already metered client again changes nothing; wrapping it with
    a different ``meter`` raises ``ValueError`` (a client is metered by one Meter).
    """
    http_client = getattr(client, "_client", None)
    if http_client is not None and _is_http_client(http_client):
        _wrap_http_client(http_client, meter)
        return client
    if _is_http_client(client):
        _wrap_http_client(client, meter)
        return client
    raise TypeError(
        f"meter.wrap() takes an openai client or an httpx/httpx2 client, not {type(client).__name__}"
    )
