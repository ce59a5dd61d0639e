"""``Meter``: the configuration hub. Recognises calls, prices records, fans them out.

Transports hold a ``Meter`` (or use the process-wide default one). The meter
turns a request into a ``Call`` (or ``None`` for foreign traffic), and when the
call's record is final it prices it and hands it to every subscriber. Each
subscriber is isolated: one that raises is counted and logged, the others
still get the record, and the caller never sees the exception.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from meter import attribution, names
from meter.core import route as route_mod
from meter.core.call import Call, Headers
from meter.core.record import CallRecord
from meter.core.request import (
    RequestInfo,
    estimate_input_tokens,
    model_hint,
    parse_body,
    stream_hint,
    with_include_usage,
)
from meter.costing import Costing, DeploymentSpec, load_deployments
from meter.sinks import content
from meter.sinks.otel import OTelSink
from meter.sinks.prometheus import PrometheusSink
from pricing import PriceBook

logger = logging.getLogger("meter")
_DEFAULT_REGISTRY: Any = object()
"""Marker: "prometheus-client's default registry" (``None`` means "register nowhere")."""
_default_lock = threading.Lock()
"""Guards the process-wide default meter (``default_meter``)."""
_book_lock = threading.Lock()
"""Guards the built-in price book. A lock of its own: building the default meter loads the book."""

RecordCallback = Callable[[CallRecord], None]


class Sink(Protocol):
    """A subscriber that also acts when a call starts (e.g. to open a span)."""

    def start(self, call: Call) -> None: ...

    def finish(self, record: CallRecord, call: Call) -> None: ...

    def fault(self, kind: str) -> None: ...


class Meter:
    """Configuration and fan-out for metered calls.

    Parameters:
        on_record: a callable or several, each given one ``CallRecord`` per metered call.
            They run inline on the thread that finished the call (the caller's, or the
            event loop for async clients), so one that blocks stalls the caller: wrap a
            slow one in ``meter.QueuedSubscriber`` (a worker thread, a bounded queue).
        inject_stream_usage: add ``stream_options.include_usage`` to streaming chat
            requests that lack it, where the endpoint accepts it (default on).
        hosts: extra hosts on which OpenAI-style ``/v1/...`` paths are metered
            (Azure ``/openai/...`` paths are metered on any host).
        capture_content: record prompt and completion text (off by default).
        dedupe_size: how many Responses ids to remember so a retrieved or resumed
            response is not counted twice.
        price_book: the ``pricing.PriceBook`` to price records with; ``None`` (default)
            loads the built-in tables (layered with ``price_tables``); ``False`` turns
            pricing off (``record.cost`` stays ``None``).
        price_tables: a path, or paths, of user price tables (negotiated prices, private models)
            layered on top of the built-in ones.
        deployments: deployment name -> model, deployment type, region: a mapping
            (values a ``pricing.DeploymentInfo``, a model name, a ``(model, type,
            region)`` tuple or a dict), a TOML/JSON file path, or ``None`` to read
            ``$METER_DEPLOYMENTS`` (a path or JSON text).
        otel: emit OpenTelemetry spans and metrics (default on), through
            ``tracer_provider`` / ``meter_provider`` or else the global providers.
        prometheus: emit Prometheus metrics (default on) into ``registry`` (default:
            prometheus-client's default registry) under ``namespace`` (default ``llm``).
        label_keys: attribution keys that become Prometheus labels (and OTel metric
            attributes); others stay on spans and records only.
        max_label_values: distinct values a guarded label may take before the rest
            read ``other``.
        content_max_chars: cap of captured prompt/completion text per span attribute.

    ``capture_content=None`` (the default) follows
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``; content is off unless asked.
    """

    def __init__(
        self,
        *,
        on_record: RecordCallback | Iterable[RecordCallback] | None = None,
        inject_stream_usage: bool = True,
        hosts: Iterable[str] = (),
        capture_content: bool | None = None,
        dedupe_size: int = 10_000,
        sinks: Iterable[Sink] = (),
        price_book: PriceBook | Literal[False] | None = None,
        price_tables: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = (),
        deployments: Mapping[str, DeploymentSpec] | str | os.PathLike[str] | None = None,
        otel: bool = True,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prometheus: bool = True,
        registry: Any = _DEFAULT_REGISTRY,
        namespace: str = names.DEFAULT_NAMESPACE,
        label_keys: Iterable[str] = (),
        max_label_values: int = 100,
        content_max_chars: int = 8192,
    ) -> None:
        if on_record is None:
            callbacks: list[RecordCallback] = []
        elif callable(on_record):
            callbacks = [on_record]
        else:
            callbacks = list(on_record)
        self._callbacks = callbacks
        self._sinks: list[Sink] = []
        self.inject_stream_usage = inject_stream_usage
        self.capture_content = content.capture_from_env() if capture_content is None else capture_content
        keys = tuple(label_keys)
        if otel:
            self._sinks.append(OTelSink(tracer_provider, meter_provider, self.capture_content, content_max_chars,
                                        keys))
        if prometheus:
            from prometheus_client import REGISTRY

            self._sinks.append(PrometheusSink(REGISTRY if registry is _DEFAULT_REGISTRY else registry,
                                              namespace, keys, max_label_values))
        self._sinks.extend(sinks)
        self._hosts = frozenset(h.lower() for h in hosts)
        self._dedupe_size = dedupe_size
        self._counted: OrderedDict[str, None] = OrderedDict()
        self._estimated: OrderedDict[str, None] = OrderedDict()
        """Response ids whose only usage so far is a provisional estimate."""
        self._lock = threading.Lock()
        self._faults: dict[str, int] = {}
        self._logged: set[str] = set()
        self.costing: Costing | None = None
        if price_book is not False:
            if isinstance(price_tables, str | os.PathLike):  # one path (a string is not a list of paths)
                tables: tuple[Path, ...] = (Path(price_tables),)
            else:
                tables = tuple(Path(t) for t in price_tables)
            book = price_book if price_book is not None else (
                PriceBook.load(*tables) if tables else builtin_price_book())
            self.costing = Costing(book, load_deployments(deployments))

    # -- public -------------------------------------------------------------------------------

    def subscribe(self, callback: RecordCallback) -> None:
        """Add a record subscriber after construction."""
        self._callbacks.append(callback)

    def add_sink(self, sink: Sink) -> None:
        """Add a sink that is told when calls start and finish."""
        self._sinks.append(sink)

    @property
    def faults(self) -> Mapping[str, int]:
        """Metering faults caught so far, by kind (self-metrics; the caller never saw them)."""
        with self._lock:
            return dict(self._faults)

    # -- used by the transports -----------------------------------------------------------------

    def begin(
        self,
        method: str,
        host: str,
        port: int | None,
        path: str,
        query: str,
        headers: Headers,
        body: Callable[[], bytes | None],
    ) -> tuple[Call, bytes | None] | None:
        """Start metering a request, or ``None`` when it is not an LLM call.

        Returns the call and, when meter rewrites the request body, the new body.
        Never raises: a fault here lets the request through unmetered.
        """
        try:
            route = route_mod.match(method, host, port, path, query, self._hosts)
            if route is None:
                return None
            raw = body() if method == "POST" else None
            if raw is not None and (route.deployment_from_body or self.capture_content or stream_hint(raw)):
                info, parsed = parse_body(raw)
            else:  # a non-streaming call on a deployment path: nothing in the body is needed
                info, parsed = RequestInfo(model=model_hint(raw)), None
            new_body = with_include_usage(route, info, raw, parsed) if self.inject_stream_usage else None
            call = Call(
                self, route, info,
                parsed if self.capture_content else None,
                estimate_input_tokens(parsed) if info.stream else 0,
                attribution.current(),
                _attempt(headers),
                _correlation_id(method, path, raw),
            )
        except Exception as exc:
            self.record_fault("begin", exc)
            return None
        for sink in self._sinks:
            try:
                sink.start(call)
            except Exception as exc:
                self.record_fault("sink_start", exc)
        return call, new_body

    def emit(self, record: CallRecord, call: Call) -> None:
        """Finish a record (dedupe, pricing) and hand it to every subscriber."""
        try:
            record = self._dedupe(record)
        except Exception as exc:
            self.record_fault("dedupe", exc)
        if self.costing is not None:
            try:
                record = self.costing.price(record)
            except Exception as exc:
                self.record_fault("pricing", exc)
        for sink in self._sinks:
            try:
                sink.finish(record, call)
            except Exception as exc:
                self.record_fault("sink", exc)
        for callback in self._callbacks:
            try:
                callback(record)
            except Exception as exc:
                self.record_fault("subscriber", exc)

    def record_fault(self, kind: str, exc: BaseException) -> None:
        """Count a metering fault and log it once per kind."""
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1
            first = kind not in self._logged
            self._logged.add(kind)
        for sink in self._sinks:
            with contextlib.suppress(Exception):  # a sink that cannot count faults must not fault in turn
                sink.fault(kind)
        if first:
            logger.warning("meter: metering fault (%s): %s: %s; the call itself was not affected",
                           kind, type(exc).__name__, exc, exc_info=exc)

    # -- internals -----------------------------------------------------------------------------

    def _dedupe(self, record: CallRecord) -> CallRecord:
        """Count a Responses id's usage once, however often it is retrieved or resumed.

        An estimate never counts as the id's usage. A provisional one (a background
        response whose create stream dropped) is remembered, so the service's usage
        for that id, when a retrieve or resume brings it, says it supersedes it.
        """
        if record.api != "responses" or record.usage is None or not record.response_id:
            return record
        key = record.response_id
        if record.usage_source == "estimated":
            if record.provisional:
                with self._lock:
                    _remember(self._estimated, key, self._dedupe_size)
            return record
        with self._lock:
            if key in self._counted:
                self._counted.move_to_end(key)
                repeat = True
                supersedes = False
            else:
                _remember(self._counted, key, self._dedupe_size)
                repeat = False
                supersedes = key in self._estimated
                self._estimated.pop(key, None)
        if repeat:
            return record.replace(usage=None, usage_source=None, repeat=True)
        if supersedes:
            record.supersedes_estimate = True
        return record


def _remember(ids: OrderedDict[str, None], key: str, size: int) -> None:
    ids[key] = None
    ids.move_to_end(key)
    if len(ids) > size:
        ids.popitem(last=False)


_builtin_book: PriceBook | None = None


def builtin_price_book() -> PriceBook:
    """The built-in price tables, loaded once per process and shared by every Meter."""
    global _builtin_book
    with _book_lock:
        if _builtin_book is None:
            _builtin_book = PriceBook.load()
        return _builtin_book


def _attempt(headers: Headers) -> int | None:
    raw = headers.get("x-stainless-retry-count")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _correlation_id(method: str, path: str, body: bytes | None) -> str:
    """The same id for every HTTP attempt of one logical call within this process.

    SDK retries resend the request byte for byte, so a hash of the request line
    and body groups them. Python's ``hash`` is enough (ids only need to agree
    within one process) and is fast on large bodies.
    """
    return format(hash((method, path, body)) & 0xFFFFFFFFFFFFFFFF, "016x")


_default: Meter | None = None


def default_meter() -> Meter:
    """The process-wide meter used by transports and ``wrap`` when none is given.

    Built on first use with ``Meter()``'s defaults (``$METER_DEPLOYMENTS`` included);
    a configuration error raises here, so transports build it when they are made,
    never inside a call.
    """
    global _default
    meter = _default
    if meter is not None:
        return meter
    with _default_lock:
        if _default is None:
            _default = Meter()
        return _default


def default_meter_or_none() -> Meter | None:
    """The default meter for a call in flight: ``None`` (the call goes unmetered) if it cannot be built.

    The error was already raised where the transport was made; here it is only logged,
    once, because nothing may raise into a call.
    """
    try:
        return default_meter()
    except Exception as exc:
        global _default_failure_logged
        if not _default_failure_logged:
            _default_failure_logged = True
            logger.error("meter: the default meter cannot be built (%s); calls go unmetered", exc)
        return None


_default_failure_logged = False


def set_default_meter(meter: Meter) -> None:
    """Replace the process-wide default meter."""
    global _default
    with _default_lock:
        _default = meter


