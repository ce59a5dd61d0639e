"""``Meter``: the configuration hub. Recognises calls, finishes their records, fans them out.

The data flows one way. Transports hand the hub a request; the hub turns it into
an immutable ``CallStart`` (route, request facts, attribution, start time, the
trace it belongs to) and a ``Call``, the per-call state machine the transport
drives. The call knows nothing of the hub: it hands its ``CallEnd`` to the
``CallOutput`` it was made with. The hub then decides what only it can (is this
Responses id already counted, what does the call cost), builds the one final
``CallRecord`` and gives it to every sink and subscriber. Sinks keep their own
per-call state (returned when the call starts, handed back with the record).
Each sink and subscriber is isolated: one that raises is counted and logged, the
others still get the record, and the caller never sees the exception. Sinks are
built only when configured (``otel=False`` never imports OpenTelemetry).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from meter import attribution, names
from meter.budget_gate import BudgetGate, BudgetsOption, charged_to
from meter.budgets import RefusalAnswer, Reservation
from meter.core import multipart, storable
from meter.core import route as route_mod
from meter.core import usage as usage_mod
from meter.core.call import Call, CallEnd, Headers
from meter.core.faults import FaultKind, Guard, guards
from meter.core.finish import billed_units, build_record, deployment, started_at
from meter.core.record import CallRecord
from meter.core.request import (
    RequestInfo,
    estimate_input_tokens,
    model_hint,
    parse_body,
    service_tier_hint,
    stream_hint,
    with_include_usage,
)
from meter.core.sink import Sink
from meter.core.start import CallStart
from meter.core.tiers import priced_tier
from meter.costing import Costing, DeploymentSpec, load_deployments
from meter.dedupe import ContainerSessions, ResponseDedupe
from meter.pricing import PriceBook
from meter.sinks import content
from meter.sinks.trace_link import current_context, trace_ids_in
from meter.worker import MeteringWorker

if TYPE_CHECKING:  # the optional parts' types, for the checker only: Meter(otel=False) imports no OTel
    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from meter.ledger.writer import LedgerWriter
    from meter.sinks.otel import OTelSink

logger = logging.getLogger("meter")
class _DefaultRegistry:
    """The type of ``_DEFAULT_REGISTRY``."""


_DEFAULT_REGISTRY = _DefaultRegistry()
"""Marker: "prometheus-client's default registry" (``None`` means "register nowhere")."""
_default_lock = threading.Lock()
"""Guards the process-wide default meter (``default_meter``)."""
_book_lock = threading.Lock()
"""Guards the built-in price book. A lock of its own: building the default meter loads the book."""

RecordCallback = Callable[[CallRecord], None]


_UPLOADS = frozenset({"transcriptions", "translations", "images"})
"""Calls whose request may be a multipart upload (audio, image edits): only their model field is read."""
_ROUTES_KEPT = 1024
_ROUTE_KEY_CHARS = 512
"""Request lines kept (``Meter._routes``) and the longest path and query kept: at most about 1 MB."""


_NO_INFO = RequestInfo()
"""A body not read yet (immutable: one for every call)."""


class _Unseen:
    """The type of ``_UNSEEN``: "this request line was not matched yet" (``None`` means "not an LLM call")."""


_UNSEEN = _Unseen()

_UNITS_FROM_REQUEST = frozenset({"speech", "images"})
"""Calls whose request says what they are billed in (the characters to speak, the image quality and size)."""


class Meter:
    """Configuration and fan-out for metered calls.

    Parameters:
        on_record: a callable or several, each given one ``CallRecord`` per metered call,
            on the metering thread (``metering``); one that blocks holds up the calls
            metered after it: wrap a slow one in ``meter.QueuedSubscriber`` (a thread of
            its own, a bounded queue).
        inject_stream_usage: add ``stream_options.include_usage`` to streaming chat
            requests that lack it, where the endpoint accepts it (default on).
        hosts: extra hosts on which OpenAI-style ``/v1/...`` paths are metered
            (Azure ``/openai/...`` paths are metered on any host).
        capture_content: record prompt and completion text (off by default).
        dedupe_size: how many Responses ids to remember so a retrieved or resumed
            response is not counted twice.
        price_book: the ``meter.pricing.PriceBook`` to price records with; ``None`` (default)
            loads the built-in tables (layered with ``price_tables``); ``False`` turns
            pricing off (``record.cost`` stays ``None``).
        price_tables: a path, or paths, of user price tables (negotiated prices, private models)
            layered on top of the built-in ones.
        deployments: deployment name -> model, deployment type, region: a mapping
            (values a ``meter.pricing.DeploymentInfo``, a model name, a ``(model, type,
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
        otel_events: emit one OpenTelemetry event per call
            (``gen_ai.client.inference.operation.details``, a log record) through
            ``logger_provider`` or the global one; ``None`` follows
            ``OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT``. Off by default.
        ledger: keep every record in a durable ledger: a SQLite file path (or
            ``sqlite:///path``) or a ``postgresql://`` URL, opened or created now
            (``meter.ledger.LedgerError`` names it if it cannot be used). Written off
            the caller's path by a thread; ``close()`` (or interpreter exit) writes
            what is queued. Each of ``label_keys`` gets an index in it.
        budgets: spend limits checked before each call is sent: a ``budgets.toml`` path or a list
            of budgets (``docs/budgets.md``). A call's worst case is held against every budget it
            matches and settled at its real cost; a ``hard`` budget it would pass refuses it with
            meter's own HTTP 429 (``budget_exceeded``, not retried by the openai SDK). A bad file
            raises here (``meter.budgets.BudgetFileError``), never inside a call.
        metering: where a call's metering runs. ``"worker"`` (default; ``None`` reads
            ``$METER_METERING``): the caller's thread only recognises the call, keeps references
            to its bytes, takes its timestamps and context and reserves its budget; reading the
            body, pricing, the record, the span, the sinks and subscribers run in order on one
            metering thread (``flush()`` waits for it; a scrape of meter's Prometheus registry
            does too). ``"inline"``: all of it on the thread that finished the call, so the
            record exists when the call returns.

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
        sinks: Iterable[Sink[Any]] = (),
        price_book: PriceBook | Literal[False] | None = None,
        price_tables: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] = (),
        deployments: Mapping[str, DeploymentSpec] | str | os.PathLike[str] | None = None,
        otel: bool = True,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        prometheus: bool = True,
        registry: CollectorRegistry | _DefaultRegistry | None = _DEFAULT_REGISTRY,
        namespace: str = names.DEFAULT_NAMESPACE,
        label_keys: Iterable[str] = (),
        max_label_values: int = 100,
        content_max_chars: int = 8192,
        ledger: str | os.PathLike[str] | None = None,
        otel_events: bool | None = None,
        logger_provider: LoggerProvider | None = None,
        budgets: BudgetsOption = None,
        metering: Literal["worker", "inline"] | None = None,
    ) -> None:
        if on_record is None:
            callbacks: list[RecordCallback] = []
        elif callable(on_record):
            callbacks = [on_record]
        else:
            callbacks = list(on_record)
        self._callbacks = callbacks
        self._sinks: list[Sink[Any]] = []
        self.inject_stream_usage = inject_stream_usage
        self.capture_content = content.capture_from_env() if capture_content is None else capture_content
        keys = tuple(label_keys)
        self._tracer: OTelSink | None = None
        """Opens each call's span one step before the call's start is built (the start carries the span and
        its ids); the same object is then an ordinary sink, first in ``_sinks``, that ends it."""
        self._current_trace: Callable[[], tuple[str | None, str | None]] | None = None
        """Without meter's own span: read the caller's current span, for Prometheus exemplars."""
        mode = metering if metering is not None else _metering_from_env()
        if mode not in _METERING_MODES:
            raise ValueError(f"metering must be 'worker' or 'inline', not {mode!r}")
        self.metering = mode
        """``worker`` (default): a call's metering runs on the metering worker; ``inline``: on the caller's thread."""
        self._worker: MeteringWorker | None = MeteringWorker() if mode == "worker" else None
        if otel:
            from meter.sinks.otel import OTelSink

            self._tracer = OTelSink(tracer_provider, meter_provider, self.capture_content, content_max_chars, keys)
            self._sinks.append(self._tracer)
        if prometheus:
            from prometheus_client import REGISTRY

            from meter.sinks.prometheus import PrometheusSink
            from meter.sinks.trace_link import current_trace_ids

            self._sinks.append(PrometheusSink(REGISTRY if isinstance(registry, _DefaultRegistry) else registry,
                                              namespace, keys, max_label_values,
                                              self._worker.flush if self._worker is not None else None))
            self._current_trace = current_trace_ids  # exemplars need a trace id (both stores keep them)
        events = otel_events if otel_events is not None else _events_from_env()
        if events:
            from meter.sinks.otel_events import EventSink

            self._sinks.append(EventSink(logger_provider, self.capture_content, content_max_chars))
        self._sinks.extend(sinks)
        self._hosts = frozenset(h.lower() for h in hosts)
        self._routes: dict[tuple[str, str, int | None, str, str], route_mod.Route | _Unseen | None] = {}
        """Request lines already matched (bounded: cleared when ``_ROUTES_KEPT`` are held)."""
        self._dedupe = ResponseDedupe(dedupe_size)
        self._containers = ContainerSessions(dedupe_size)
        self._fault_counter = _FaultCounter(self._sinks)
        self.guard: Mapping[FaultKind, Guard] = guards(self._fault_counter.record)
        """``with meter.guard[kind]:`` runs metering work that must never raise into the caller. The guards
        report to a counter of their own, not to the Meter: no reference cycle keeps a dropped Meter alive."""
        self.costing: Costing | None = None
        if price_book is not False:
            if isinstance(price_tables, str | os.PathLike):  # one path (a string is not a list of paths)
                tables: tuple[Path, ...] = (Path(price_tables),)
            else:
                tables = tuple(Path(t) for t in price_tables)
            book = price_book if price_book is not None else (
                PriceBook.load(*tables) if tables else builtin_price_book())
            self.costing = Costing(book, load_deployments(deployments))
        self.budgets: BudgetGate | None = BudgetGate.load(budgets, self.costing, ledger, self.guard)
        """The budgets (``Meter(budgets=...)``): ``.store.status()``, ``.refused()``."""
        if self.budgets is not None:  # their gauges and refusals at scrape time, an OTel event per alert
            if prometheus and registry is not None:
                from prometheus_client import REGISTRY as DEFAULT

                from meter.sinks.prometheus_budgets import publish

                publish(self.budgets, DEFAULT if isinstance(registry, _DefaultRegistry) else registry, namespace)
            if events:
                from meter.sinks.otel_events import BudgetAlertEvents

                self.budgets.on_alert.append(BudgetAlertEvents(logger_provider).emit)
        self.ledger: LedgerWriter | None = None
        """The ledger writer (``Meter(ledger=...)``): ``.written``, ``.dropped``, ``.flush()``."""
        if ledger is not None:  # last: nothing after it can fail and leave a writer thread behind
            from meter.ledger.open import open_ledger
            from meter.ledger.writer import LedgerWriter
            from meter.sinks.ledger import LedgerSink

            self.ledger = LedgerWriter(open_ledger(ledger, keys),
                                       on_fault=self._fault_counter.record_many)
            self._sinks.append(LedgerSink(self.ledger))

    # -- public -------------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every call that has ended so far has its record handed out (sinks, subscribers,
        budgets); ``False`` on timeout. With ``metering="inline"`` they already have: returns at once.

        The ledger writes on its own thread after that (``meter.ledger.flush()`` waits for it)."""
        return self._worker.flush(timeout) if self._worker is not None else True

    def close(self, timeout: float = 10.0) -> bool:
        """Meter what is queued, write what the ledger has queued and close it; ``False`` on timeout.

        Closing again does nothing. A call that finishes after ``close`` is metered on its own thread and
        still reaches the other sinks and the subscribers; its ledger row is not written, and is counted
        (fault ``ledger_after_close``).
        """
        deadline = time.monotonic() + timeout
        if self._worker is not None:  # first: the records it makes go to the budgets and the ledger
            self._worker.close(timeout)
            timeout = max(0.0, deadline - time.monotonic())
        if self.budgets is not None:  # a shared store writes its spend and gives its leases back
            self.budgets.close()
        return self.ledger.close(timeout) if self.ledger is not None else True

    def subscribe(self, callback: RecordCallback) -> None:
        """Add a record subscriber after construction."""
        self._callbacks.append(callback)

    def add_sink(self, sink: Sink[Any]) -> None:
        """Add a sink that is told when calls start and finish."""
        self._sinks.append(sink)

    @property
    def faults(self) -> Mapping[str, int]:
        """Metering faults caught so far, by kind (self-metrics; the caller never saw them)."""
        return self._fault_counter.counts()

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
    ) -> tuple[Call, bytes | None, RefusalAnswer | None] | None:
        """Start metering a request, or ``None`` when it is not an LLM call.

        Returns the call and, when meter rewrites the request body, the new body.
        Never raises: a fault here lets the request through unmetered.
        """
        guard = self.guard
        with guard["begin"]:
            key = (method, host, port, path, query)
            route = self._routes.get(key, _UNSEEN)
            if route is _UNSEEN:  # a request line seen before is not matched again (routes are never changed)
                route = route_mod.match(method, host, port, path, query, self._hosts)
                if len(path) + len(query) <= _ROUTE_KEY_CHARS:  # a hostile long URL is not kept
                    if len(self._routes) >= _ROUTES_KEPT:
                        self._routes.clear()
                    self._routes[key] = route
            if route is None or isinstance(route, _Unseen):
                return None
            started_ns = time.time_ns()
            raw = body() if method == "POST" else None
            capture = self.capture_content
            read: _Read = "parsed"
            if raw is not None and route.api in _UPLOADS and multipart.is_form(headers.get("content-type")):
                # an upload (audio, image edits): only its model field, from the head, never the files
                info, parsed = RequestInfo(model=multipart.form_field(raw, "model")), None
            elif raw is not None and (capture or stream_hint(raw) or route.api in _UNITS_FROM_REQUEST
                                      or self.budgets is not None):
                info, parsed = parse_body(raw)
            else:  # a non-streaming call: what the body says is read later (``full_start``, on the worker)
                # The body names the deployment (Responses, v1): parsed, as the price depends on it;
                # on a deployment path its model and tier are only informational, so a hint does.
                info, parsed, read = _NO_INFO, None, "parse" if route.deployment_from_body else "hint"
            new_body = None
            if info.stream and self.inject_stream_usage:
                new_body = with_include_usage(route, info, raw, parsed)
            worker = self._worker
            deferred = worker is not None and worker.accepting
            behind = worker is not None and not deferred and not worker.closed
            facts = _RequestFacts(method, path, raw, headers.get("x-stainless-retry-count"), parsed, read)
            start = CallStart(route, info, attribution.current(), None, None, started_ns, None, None, capture,
                              parsed if capture else None, 0)
            held = None
            if self.budgets is not None:  # budgets match on the finished start, here
                start = self.full_start(start, facts)
                with guard["budget"]:
                    held = self.budgets.reserve(start, deployment(start), parsed, start.info.service_tier)
                if isinstance(held, RefusalAnswer) or (isinstance(held, Reservation)
                                                        and self.budgets.holds_hard(held)):
                    # A hard budget's hold is settled on this thread, when the call ends: the next call's
                    # reservation sees its real cost, not its worst case still held (a false refusal). A
                    # refused call too: its record comes in order with those calls'.
                    deferred = False
            parent: object = None
            if deferred:  # the rest of the start, and the span, on the worker (under this context)
                parent = current_context()
            else:
                if self.budgets is None:
                    start = self.full_start(start, facts)
                if self._tracer is not None:
                    with guard["sink_start"]:
                        span, trace_id, span_id = self._tracer.open(start.route, start.info, started_ns,
                                                                    start.request_body)
                        start = start._replace(trace_id=trace_id, span_id=span_id, span=span)
                if start.trace_id is None and self._current_trace is not None:
                    trace_id, span_id = self._current_trace()
                    start = start._replace(trace_id=trace_id, span_id=span_id)
            refusal = held if isinstance(held, RefusalAnswer) else None
            pending = _Pending(self, start, held if isinstance(held, Reservation) else None)
            call = Call(start, pending)
            if deferred:  # its start runs on the worker with its end: one hand-off, one wake-up per call
                pending.defer(None if self.budgets is not None else facts, parent)
            else:
                pending.states = self.start_sinks(start)
                if behind:
                    self.record_fault("metering_inline", _QueueFull(worker.max_queued if worker else 0))
            return call, new_body, refusal
        return None

    def full_start(self, start: CallStart, facts: _RequestFacts) -> CallStart:
        """The rest of a call's start, from its request (off the caller's thread when the call is deferred):
        the model and tier a body was not parsed for, every value made storable (a change is one
        ``value_repaired`` fault), the attempt, the correlation id and a stream's input estimate."""
        info = start.info
        raw = facts.raw
        if facts.read == "hint":
            info = RequestInfo(model=model_hint(raw), service_tier=service_tier_hint(raw))
        elif facts.read == "parse":
            info = parse_body(raw)[0]
        # The request went out as sent; what it says is made storable before any sink sees it.
        route, info, attributes, attempt, repaired = storable.clean_start(
            start.route, info, start.attributes, _attempt(facts.retry))
        request_body = start.request_body
        if request_body is not None and storable.may_hold_surrogates(raw):
            request_body, changed = storable.clean_tree(request_body)
            repaired += ("request_body",) if changed else ()
        if repaired:
            self.record_fault("value_repaired", storable.ValueRepaired(repaired))
        return start._replace(route=route, info=info, attributes=attributes, attempt=attempt,
                              correlation_id=_correlation_id(facts.method, facts.path, raw),
                              request_body=request_body,
                              input_estimate=estimate_input_tokens(facts.parsed) if info.stream else 0,
                              repaired=bool(repaired))

    def start_sinks(self, start: CallStart) -> list[Any]:
        """Tell every sink the call started; their states, in order (``None`` for a sink that failed)."""
        states: list[Any] = []
        for sink in self._sinks:
            state = None
            with self.guard["sink_start"]:
                state = sink.start(start)
            states.append(state)
        return states

    def opened(self, start: CallStart, parent: object) -> CallStart:
        """On the metering worker: open the call's span with the call's own start time under the caller's
        ``parent`` context, and put its ids (or the caller's trace's) on the start."""
        span: object = None
        trace_id = span_id = None
        if self._tracer is not None:
            with self.guard["sink_start"]:
                span, trace_id, span_id = self._tracer.open(start.route, start.info, start.started_ns,
                                                            start.request_body, parent)
        if trace_id is None and (self._tracer is not None or self._current_trace is not None):
            trace_id, span_id = trace_ids_in(parent)
        if span is None and trace_id is None:
            return start
        return start._replace(trace_id=trace_id, span_id=span_id, span=span)

    def finish(self, start: CallStart, end: CallEnd, states: list[Any], held: Reservation | None = None) -> None:
        """Turn a call's end into its one final record (dedupe, pricing) and hand it out."""
        guard = self.guard
        at = started_at(start)
        end = self._storable_end(start, end)
        usage, usage_source, repeat, supersedes = end.usage, end.usage_source, False, False
        with guard["dedupe"]:
            usage, usage_source, repeat, supersedes = self._dedupe.check(
                start.route.api, end.response_id, end.usage, end.usage_source, end.provisional)
            if end.containers and usage is not None:
                usage = self._containers.new_sessions(usage, end.containers)
        tier, tier_assumed = priced_tier(end.service_tier, start.info.service_tier)
        units = billed_units(start, end, usage)
        cost = deployment_type = region = None
        if self.costing is not None:
            with guard["pricing"]:
                cost, deployment_type, region = self.costing.cost_of_call(
                    deployment(start), end.response_model or end.batch_model, usage, usage_source == "estimated",
                    at, end.azure, tier, units, start.route.api == "batch_output")
        record = None
        with guard["record"]:
            record = build_record(start, end, at=at, usage=usage, usage_source=usage_source, repeat=repeat,
                                  supersedes_estimate=supersedes, cost=cost, deployment_type=deployment_type,
                                  region=region, service_tier=tier, service_tier_assumed=tier_assumed, units=units,
                                  budgets=charged_to(held))
        if held is not None and self.budgets is not None:
            with guard["budget"]:  # every hold ends: at its cost, or released at its worst case
                if record is None:
                    self.budgets.store.release(held)
                else:
                    self.budgets.settle(held, record)
        if record is None:
            return
        for sink, state in zip(self._sinks, states, strict=False):
            with guard["sink"]:
                sink.finish(record, state)
        for callback in self._callbacks:
            with guard["subscriber"]:
                callback(record)

    def release(self, held: Reservation) -> None:
        """End a budget hold whose call has no record, at its worst case (never at 0)."""
        if self.budgets is not None:
            with self.guard["budget"]:
                self.budgets.store.release(held)

    def _storable_end(self, start: CallStart, end: CallEnd) -> CallEnd:
        """What the response said, made storable, with usage subsets capped by their totals: before
        pricing and dedupe see it, so the record is priced and kept as it is stored. A change is a fault,
        one ``value_repaired`` per call (its request's repair, if any, was counted when it began)."""
        with self.guard["record"]:  # a bug here must not lose the record: it goes on as it came
            cleaned, repaired = storable.clean_end(end)
            if repaired and not start.repaired:
                self.record_fault("value_repaired", storable.ValueRepaired(repaired))
            usage = cleaned.usage
            if usage is not None:
                capped = usage_mod.cap_subsets(usage)
                if capped is not usage:
                    self.record_fault("usage_subset_capped", usage_mod.SubsetExceeded(usage, capped))
                    cleaned = cleaned._replace(usage=capped)
            end = cleaned
        return end

    def record_fault(self, kind: FaultKind, exc: BaseException) -> None:
        """Count a metering fault and log it once per kind."""
        self._fault_counter.record(kind, exc)


class _FaultCounter:
    """Counts metering faults, tells the sinks, logs each kind once. Apart from ``Meter`` so the guards,
    which hold its ``record``, hold no reference back to the Meter."""

    __slots__ = ("_counts", "_lock", "_logged", "_sinks")

    def __init__(self, sinks: list[Sink[Any]]) -> None:
        self._sinks = sinks
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._logged: set[str] = set()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def record_many(self, kind: FaultKind, reason: str, count: int) -> None:
        """The ledger writer could not write ``count`` records as they were: counted by kind, logged once."""
        for _ in range(count):
            self.record(kind, _LedgerFault(reason))

    def record(self, kind: FaultKind, exc: BaseException) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            first = kind not in self._logged
            self._logged.add(kind)
        for sink in self._sinks:
            with contextlib.suppress(Exception):  # a sink that cannot count faults must not fault in turn
                sink.fault(kind)
        if first:
            logger.warning("meter: metering fault (%s): %s: %s; the call itself was not affected",
                           kind, type(exc).__name__, exc, exc_info=exc)


_METERING_MODES = ("worker", "inline")


def _metering_from_env() -> Literal["worker", "inline"]:
    """``METER_METERING``: ``worker`` (also when unset) or ``inline``; anything else is a configuration error."""
    value = os.environ.get("METER_METERING", "").strip().lower() or "worker"
    if value == "inline":
        return "inline"
    if value != "worker":
        raise ValueError(f"METER_METERING must be 'worker' or 'inline', not {value[:40]!r}")
    return "worker"


def _events_from_env() -> bool:
    """``OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT`` (read here so an unset variable imports nothing)."""
    return os.environ.get("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT", "").strip().lower() in ("true", "1", "yes")


class _LedgerFault(Exception):
    """Records the ledger could not write as they were (counted; the calls were not affected)."""


_Read = Literal["parsed", "parse", "hint"]
"""A request body already parsed on the caller's thread; to be parsed in ``full_start``; or only its model and
tier read there without a parse."""


class _RequestFacts(NamedTuple):
    """What ``Meter.full_start`` reads from a request: taken on the caller's thread (references only)."""

    method: str
    path: str
    raw: bytes | None
    retry: str | None
    """The ``x-stainless-retry-count`` header as sent: read on the caller's thread, as keeping the request's
    headers for the worker instead held 3.2 KB and 58 objects more per queued call (a backlog the cyclic
    collector walks)."""
    parsed: dict[str, Any] | None
    read: _Read
    """How the body is still to be read (``_Read``)."""


class _QueueFull(Exception):
    """The metering worker's queue was full when a call began: it was metered on its own thread."""

    def __init__(self, bound: int) -> None:
        super().__init__(f"{bound} metering jobs were waiting")


class _Pending:
    """The ``CallOutput`` of one call: where its end goes, with the sinks' states for it.

    ``deferred``: the call's start and end run on the Meter's metering worker as one job, when the call
    ends (``defer``): the caller's thread hands over one job and wakes the worker at most once per call,
    and no sink needs a call's start before its end (a span is opened with the call's own start time
    under the context captured as it began). Else both run inline."""

    __slots__ = ("_begin", "_held", "_meter", "deferred", "guard", "start", "states")

    def __init__(self, meter: Meter, start: CallStart, held: Reservation | None) -> None:
        self._meter = meter
        self._held = held
        self.start = start
        self.states: list[Any] = []
        self.deferred = False
        self._begin: tuple[_RequestFacts | None, object] | None = None
        """The start left for the worker: the request facts not read yet, and the caller's context."""
        self.guard = meter.guard

    def defer(self, facts: _RequestFacts | None, parent: object) -> None:
        """Run the call's start on the metering worker, just before its end (``_complete``)."""
        self._begin = (facts, parent)
        self.deferred = True

    def begin(self, call: Call, facts: _RequestFacts | None, parent: object) -> None:
        """The call's start on the worker: the rest of its start (``facts``, when the caller's thread left it),
        its span, then every sink's start. The call is given the finished start before its end is built."""
        meter = self._meter
        start = self.start
        if facts is not None:
            with self.guard["begin"]:
                start = meter.full_start(start, facts)
        self.start = start = meter.opened(start, parent)
        call.start = start
        self.states = meter.start_sinks(start)

    def ended(self, call: Call, exc: BaseException | None, duration_s: float) -> None:
        worker = self._meter._worker
        if self.deferred and worker is not None and worker.submit(lambda: self._complete(call, exc, duration_s)):
            return
        self._complete(call, exc, duration_s)  # inline, or the worker closed meanwhile: here, now

    def later(self, job: Callable[[], None]) -> bool:
        """A stream's held chunks are read on the caller's thread, as they pass: handing each batch to the
        worker cost more hand-offs than it saved (peers S4 1.15x against 1.12x), and a caller reading a huge
        body faster than the worker would queue its chunks without bound. Its end is built on the worker."""
        return False

    def _complete(self, call: Call, exc: BaseException | None, duration_s: float) -> None:
        left = self._begin
        if left is not None:
            self._begin = None
            self.begin(call, *left)
        end = call.complete(exc, duration_s)
        if end is not None:
            self._meter.finish(self.start, end, self.states, self._held)
        elif self._held is not None:  # no record (a fault): the hold still ends, at its worst case
            self._meter.release(self._held)

    def fault(self, kind: FaultKind, exc: BaseException) -> None:
        self._meter.record_fault(kind, exc)


_builtin_book: PriceBook | None = None


def builtin_price_book() -> PriceBook:
    """The built-in price tables, loaded once per process and shared by every Meter."""
    global _builtin_book
    with _book_lock:
        if _builtin_book is None:
            _builtin_book = PriceBook.load()
        return _builtin_book


def _attempt(raw: str | None) -> int | None:
    """The SDK's ``x-stainless-retry-count``: 0 for the first attempt, n for the n-th retry."""
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


