"""Meter LiteLLM's HTTP traffic: ``instrument()`` once, then call LiteLLM as usual.

LiteLLM sends Azure Responses API calls (``litellm.responses`` /
``litellm.aresponses``, and ``litellm.completion`` with ``azure/responses/...``
models, which it bridges to the Responses API) through its own HTTP handlers,
``HTTPHandler`` and ``AsyncHTTPHandler`` in
``litellm.llms.custom_httpx.http_handler``. Each handler owns one ``httpx``
client, built by its ``create_client()`` method (once, when the handler is made,
and again when LiteLLM replaces a closed client); LiteLLM caches the handlers in
``litellm.in_memory_llm_clients_cache`` and rebuilds them when they expire.

Why a patch and not a setting: LiteLLM's documented HTTP client settings,
``litellm.client_session`` / ``litellm.aclient_session``, are only read by the
code paths that call through the ``openai`` SDK; the Responses handlers never
read them. A ``client=`` argument works but has to be passed to every call, and
the undocumented ``litellm.sync_transport`` has no async twin and is ignored
with ``litellm.force_ipv4``. So ``instrument()`` makes the narrowest change that
covers every client those handlers build: it wraps the two ``create_client``
methods so the client they return has its transports (the default one and every
proxy mount) wrapped in ``meter.MeteredTransport`` / ``meter.AsyncMeteredTransport``
(any inner transport is kept: httpx's own, or LiteLLM's aiohttp transport), and
it meters the clients of the handlers LiteLLM built before (its client cache and
its module-level handlers). Nothing else in LiteLLM changes: requests, retries,
timeouts, proxies and SSL settings are LiteLLM's own, and every byte passes
through unchanged.

Not covered: calls LiteLLM makes through the ``openai`` SDK (Azure Chat
Completions, ``azure/<deployment>`` without ``responses/``) and any ``httpx``
client you hand LiteLLM yourself. For those, LiteLLM's documented setting is the
hook: ``litellm.client_session = meter.wrap(httpx.Client(), meter=m)`` and
``litellm.aclient_session = meter.wrap(httpx.AsyncClient(), meter=m)``.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meter.adapters.transport import AsyncMeteredTransport, MeteredTransport
from meter.extras import require
from meter.hub import Meter, default_meter, default_meter_or_none

if TYPE_CHECKING:
    import httpx

    _Metered = MeteredTransport[httpx.Request, httpx.Response] | AsyncMeteredTransport[httpx.Request, httpx.Response]

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_HANDLERS_MODULE = "litellm.llms.custom_httpx.http_handler"

_lock = threading.RLock()
_meter: Meter | None = None
_originals: dict[type, Callable[..., Any]] = {}
"""The handler classes whose ``create_client`` is wrapped, and the original methods."""
_ours: weakref.WeakSet[_Metered] = weakref.WeakSet()
"""Transports this module put in place (``uninstrument`` takes them out again)."""
_clients: weakref.WeakSet[Any] = weakref.WeakSet()
"""``httpx`` clients whose transports this module metered."""


def _handler_classes() -> tuple[type, type]:
    """LiteLLM's ``(HTTPHandler, AsyncHTTPHandler)``; imports LiteLLM."""
    module = importlib.import_module(_HANDLERS_MODULE)
    return module.HTTPHandler, module.AsyncHTTPHandler


def _meter_transport(transport: Any, is_async: bool) -> Any:
    if transport is None or isinstance(transport, MeteredTransport | AsyncMeteredTransport):
        return transport  # already metered (by the user, or by us): never meter twice
    metered: _Metered = (
        AsyncMeteredTransport(transport, _meter) if is_async else MeteredTransport(transport, _meter)
    )
    _ours.add(metered)
    return metered


def _meter_client(client: Any, is_async: bool) -> None:
    """Wrap ``client``'s default and mounted transports in place (all its other settings stay)."""
    if not hasattr(client, "_transport"):
        return
    client._transport = _meter_transport(client._transport, is_async)
    mounts = getattr(client, "_mounts", None)
    if mounts:
        for pattern, transport in list(mounts.items()):
            mounts[pattern] = _meter_transport(transport, is_async)
    _clients.add(client)


def _unmeter_client(client: Any) -> None:
    """Put back the inner transports of the wrappers this module added to ``client``."""
    transport = getattr(client, "_transport", None)
    if transport is not None and transport in _ours:
        client._transport = transport.inner
    mounts = getattr(client, "_mounts", None)
    if mounts:
        for pattern, mounted in list(mounts.items()):
            if mounted is not None and mounted in _ours:
                mounts[pattern] = mounted.inner


def _wrapped_create_client(original: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        try:
            _meter_client(client, is_async)
        except Exception as exc:  # metering must never break LiteLLM: the client works, unmetered
            fault_meter = _meter or default_meter_or_none()
            if fault_meter is not None:
                fault_meter.record_fault("litellm_instrument", exc)
        return client

    create_client.__wrapped__ = original  # type: ignore[attr-defined]
    create_client.__doc__ = original.__doc__
    create_client.__name__ = getattr(original, "__name__", "create_client")
    return create_client


def _existing_handlers() -> list[Any]:
    """The HTTP handlers LiteLLM built before ``instrument()``: its client cache and its module-level singletons.

    The singletons are read from the module's namespace, so a lazily created one is not created here.
    """
    litellm = importlib.import_module("litellm")
    namespace = vars(litellm)
    found = [namespace.get("module_level_client"), namespace.get("module_level_aclient")]
    entries = getattr(namespace.get("in_memory_llm_clients_cache"), "cache_dict", None)
    if isinstance(entries, dict):
        found.extend(entries.values())
    return [handler for handler in found if handler is not None]


def instrument(meter: Meter | None = None) -> None:
    """Meter every HTTP call LiteLLM makes through its own HTTP handlers, sync and async.

    ``meter`` receives the records; ``None`` means the process-wide
    ``meter.default_meter()`` at the time of each call. Calling ``instrument``
    again switches every instrumented client to the new ``meter``. Imports
    LiteLLM (``meter.extras.MissingExtra``, an ``ImportError`` naming the extra,
    when it is not installed). With no ``meter``, the default meter is built here,
    so a configuration error raises now rather than inside a LiteLLM call.
    """
    global _meter
    require("litellm", "meter.integrations.litellm.instrument()")
    sync_cls, async_cls = _handler_classes()
    if meter is None:
        default_meter()
    with _lock:
        _meter = meter
        for transport in list(_ours):
            transport.meter = meter
        for cls, is_async in ((sync_cls, False), (async_cls, True)):
            if cls not in _originals:
                original = cls.__dict__["create_client"]
                _originals[cls] = original
                cls.create_client = _wrapped_create_client(original, is_async)  # type: ignore[attr-defined]
        for handler in _existing_handlers():
            if isinstance(handler, sync_cls | async_cls) and getattr(handler, "_owns_client", False):
                _meter_client(getattr(handler, "_client", None), isinstance(handler, async_cls))


def uninstrument() -> None:
    """Undo ``instrument()``: LiteLLM builds plain clients again, and the metered ones lose their wrappers.

    A no-op when not instrumented (and when LiteLLM was never imported).
    """
    global _meter
    with _lock:
        for cls, original in _originals.items():
            cls.create_client = original  # type: ignore[attr-defined]
        _originals.clear()
        for client in list(_clients):
            _unmeter_client(client)
        _clients.clear()
        _ours.clear()
        _meter = None


def is_instrumented() -> bool:
    """Whether ``instrument()`` is in force."""
    return bool(_originals)
