"""A real OTLP/HTTP (protobuf) receiver on a loopback port, for end-to-end telemetry tests.

Why a real receiver instead of the SDK's in-memory exporters: meter's job is to *emit* telemetry over
the wire, so tests should see exactly what a collector sees after the real OTLP exporter has encoded,
optionally compressed and POSTed it. In-memory exporters skip encoding, attribute type coercion,
resource/scope grouping and the HTTP path, which is where mistakes hide (wrong endpoint suffix,
unexportable attribute types, secrets leaking into the payload).

    with OtlpReceiver() as rx:
        exporter = OTLPSpanExporter(endpoint=rx.traces_endpoint)
        ...
        span = rx.wait_for_spans(1)[0]
        assert span.kind == "CLIENT"
        assert b"sk-secret" not in b"".join(rx.raw_bodies)

Standard library plus ``opentelemetry-proto``. The server runs in a daemon thread on ``127.0.0.1:0``;
leaving the ``with`` block shuts it down. Everything received is stored behind one lock, so the lists
can be read from the test thread while exports arrive.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "OtlpReceiver",
    "ReceivedEvent",
    "ReceivedMetric",
    "ReceivedPoint",
    "ReceivedRequest",
    "ReceivedSpan",
    "decode_any_value",
    "decode_attributes",
    "metric_points",
]

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
LOGS_PATH = "/v1/logs"
_PROTOBUF = "application/x-protobuf"


# --------------------------------------------------------------------------- decoded records


@dataclass
class ReceivedEvent:
    """One span event (e.g. ``exception`` or ``gen_ai.client.operation.exception``)."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class ReceivedSpan:
    """One span as a collector would see it, with ids as lowercase hex (the form logs and exemplars use)."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    start_ns: int
    end_ns: int
    status_code: str
    status_message: str
    attributes: dict[str, Any]
    events: list[ReceivedEvent]
    resource: dict[str, Any]
    scope: str
    scope_version: str = ""
    links: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Span duration in seconds, so latency assertions don't repeat the ns arithmetic."""
        return (self.end_ns - self.start_ns) / 1e9


@dataclass
class ReceivedPoint:
    """One data point. ``value`` is set for sum/gauge; count/sum/buckets for histograms.

    Exemplars are dicts with ``trace_id``/``span_id`` (hex, or None), ``value``, ``time_ns`` and
    ``attributes`` (the filtered attributes), which is what a Prometheus exemplar would carry.
    """

    attributes: dict[str, Any]
    value: float | int | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    exemplars: list[dict[str, Any]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    start_ns: int = 0
    time_ns: int = 0
    # exponential histograms only
    scale: int | None = None
    zero_count: int | None = None
    positive_offset: int | None = None
    positive_bucket_counts: list[int] = field(default_factory=list)
    # summaries only: [(quantile, value), ...]
    quantiles: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class ReceivedMetric:
    """One metric from one export request.

    ``export`` numbers the metrics requests (0, 1, ...) so ``metric_points`` can pick the latest one:
    with the SDK's default cumulative temporality the last export already holds the running totals.
    """

    name: str
    unit: str
    description: str
    kind: str
    points: list[ReceivedPoint]
    temporality: str | None = None
    is_monotonic: bool | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    export: int = 0


@dataclass
class ReceivedRequest:
    """One HTTP request as received (body already decompressed), for header and payload checks."""

    path: str
    headers: dict[str, str]
    body: bytes


# --------------------------------------------------------------------------- decoding


def decode_any_value(value: common_pb2.AnyValue) -> Any:
    """Turn an OTLP ``AnyValue`` into plain Python (lists and dicts for array/kvlist; None when empty)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [decode_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, which)


def decode_attributes(kvs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    """Turn repeated ``KeyValue`` into a dict (attributes are unique by key in valid OTLP)."""
    return {kv.key: decode_any_value(kv.value) for kv in kvs}


def _hex(raw: bytes) -> str | None:
    """Hex-encode an id; empty / all-zero bytes mean "absent" in OTLP, so they become None."""
    return raw.hex() if raw and any(raw) else None


def _enum_suffix(name: str, prefix: str) -> str:
    """``SPAN_KIND_CLIENT`` -> ``CLIENT``: the short names match how the API spells kinds and statuses."""
    return name.removeprefix(prefix)


@dataclass
class ReceivedLog:
    """One log record (an event when ``event_name`` is set), decoded from OTLP protobuf."""

    event_name: str
    time_ns: int
    trace_id: str
    span_id: str
    severity_number: int
    body: Any
    attributes: dict[str, Any]
    scope: str


def _decode_logs(request: logs_service_pb2.ExportLogsServiceRequest) -> list[ReceivedLog]:
    out: list[ReceivedLog] = []
    for rl in request.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(ReceivedLog(r.event_name, r.time_unix_nano, r.trace_id.hex(), r.span_id.hex(),
                                       r.severity_number, r.body.string_value if r.HasField("body") else None,
                                       decode_attributes(r.attributes), sl.scope.name))
    return out


def _decode_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = decode_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    ReceivedSpan(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=_hex(s.parent_span_id),
                        kind=_enum_suffix(trace_pb2.Span.SpanKind.Name(s.kind), "SPAN_KIND_"),
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        status_code=_enum_suffix(trace_pb2.Status.StatusCode.Name(s.status.code), "STATUS_CODE_"),
                        status_message=s.status.message,
                        attributes=decode_attributes(s.attributes),
                        events=[
                            ReceivedEvent(e.name, e.time_unix_nano, decode_attributes(e.attributes)) for e in s.events
                        ],
                        resource=resource,
                        scope=ss.scope.name,
                        scope_version=ss.scope.version,
                        links=[
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": decode_attributes(link.attributes),
                            }
                            for link in s.links
                        ],
                    )
                )
    return spans


def _decode_exemplars(exemplars: Iterable[metrics_pb2.Exemplar]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ex in exemplars:
        which = ex.WhichOneof("value")
        out.append(
            {
                "trace_id": _hex(ex.trace_id),
                "span_id": _hex(ex.span_id),
                "value": getattr(ex, which) if which else None,
                "time_ns": ex.time_unix_nano,
                "attributes": decode_attributes(ex.filtered_attributes),
            }
        )
    return out


def _number_point(p: metrics_pb2.NumberDataPoint) -> ReceivedPoint:
    which = p.WhichOneof("value")
    return ReceivedPoint(
        attributes=decode_attributes(p.attributes),
        value=getattr(p, which) if which else None,
        exemplars=_decode_exemplars(p.exemplars),
        start_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
    )


def _histogram_point(p: metrics_pb2.HistogramDataPoint) -> ReceivedPoint:
    return ReceivedPoint(
        attributes=decode_attributes(p.attributes),
        count=p.count,
        sum=p.sum if p.HasField("sum") else None,
        bucket_counts=list(p.bucket_counts),
        explicit_bounds=list(p.explicit_bounds),
        exemplars=_decode_exemplars(p.exemplars),
        min=p.min if p.HasField("min") else None,
        max=p.max if p.HasField("max") else None,
        start_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
    )


def _exp_histogram_point(p: metrics_pb2.ExponentialHistogramDataPoint) -> ReceivedPoint:
    return ReceivedPoint(
        attributes=decode_attributes(p.attributes),
        count=p.count,
        sum=p.sum if p.HasField("sum") else None,
        exemplars=_decode_exemplars(p.exemplars),
        min=p.min if p.HasField("min") else None,
        max=p.max if p.HasField("max") else None,
        start_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
        scale=p.scale,
        zero_count=p.zero_count,
        positive_offset=p.positive.offset,
        positive_bucket_counts=list(p.positive.bucket_counts),
    )


def _summary_point(p: metrics_pb2.SummaryDataPoint) -> ReceivedPoint:
    return ReceivedPoint(
        attributes=decode_attributes(p.attributes),
        count=p.count,
        sum=p.sum,
        start_ns=p.start_time_unix_nano,
        time_ns=p.time_unix_nano,
        quantiles=[(q.quantile, q.value) for q in p.quantile_values],
    )


def _temporality(value: int) -> str:
    return _enum_suffix(metrics_pb2.AggregationTemporality.Name(value), "AGGREGATION_TEMPORALITY_")


def _decode_metric(m: metrics_pb2.Metric, resource: dict[str, Any], scope: str, export: int) -> ReceivedMetric:
    kind = m.WhichOneof("data") or "unknown"
    points: list[ReceivedPoint] = []
    temporality: str | None = None
    monotonic: bool | None = None
    if kind == "sum":
        points = [_number_point(p) for p in m.sum.data_points]
        temporality, monotonic = _temporality(m.sum.aggregation_temporality), m.sum.is_monotonic
    elif kind == "gauge":
        points = [_number_point(p) for p in m.gauge.data_points]
    elif kind == "histogram":
        points = [_histogram_point(p) for p in m.histogram.data_points]
        temporality = _temporality(m.histogram.aggregation_temporality)
    elif kind == "exponential_histogram":
        points = [_exp_histogram_point(p) for p in m.exponential_histogram.data_points]
        temporality = _temporality(m.exponential_histogram.aggregation_temporality)
    elif kind == "summary":
        points = [_summary_point(p) for p in m.summary.data_points]
    return ReceivedMetric(
        name=m.name,
        unit=m.unit,
        description=m.description,
        kind=kind,
        points=points,
        temporality=temporality,
        is_monotonic=monotonic,
        resource=resource,
        scope=scope,
        export=export,
    )


def _decode_metrics(request: metrics_service_pb2.ExportMetricsServiceRequest, export: int) -> list[ReceivedMetric]:
    out: list[ReceivedMetric] = []
    for rm in request.resource_metrics:
        resource = decode_attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            out.extend(_decode_metric(m, resource, sm.scope.name, export) for m in sm.metrics)
    return out


def metric_points(metrics: list[ReceivedMetric], name: str) -> list[ReceivedPoint]:
    """Points of metric ``name`` from the latest export that carried it ([] if it never arrived).

    With cumulative temporality (the SDK default) every export repeats the running totals, so the
    latest export is the answer and summing across exports would double count. If one export holds
    the name more than once (several scopes or resources), their points are concatenated.
    """
    matching = [m for m in metrics if m.name == name]
    if not matching:
        return []
    latest = max(m.export for m in matching)
    return [p for m in matching if m.export == latest for p in m.points]


# --------------------------------------------------------------------------- server


def _decompress(body: bytes, encoding: str) -> bytes:
    """Undo Content-Encoding; the OTLP exporters send gzip (OTEL_EXPORTER_OTLP_COMPRESSION) or deflate."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some clients send it
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class _Handler(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP protobuf POSTs and hands the decompressed body to the receiver."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = _decompress(raw, self.headers.get("Content-Encoding", ""))
        except (OSError, ValueError, zlib.error) as exc:
            self._reply(400, str(exc).encode(), "text/plain")
            return
        path = self.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, response = receiver._handle(path, headers, body)
        self._reply(status, response, _PROTOBUF if status == 200 else "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr lines; pytest output should show test failures, not access logs."""


class _Server(ThreadingHTTPServer):
    """Tracks open connections so ``stop`` can close idle keep-alive sockets instead of leaking threads."""

    daemon_threads = True
    receiver: OtlpReceiver

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._conns_lock:
            self._conns.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class OtlpReceiver:
    """A loopback OTLP/HTTP collector that decodes and stores what it receives.

    ``fail_with`` (an HTTP status such as 503) makes every export fail after it has been recorded, so
    tests can check that an unreachable or failing collector never breaks the metered call.
    """

    endpoint: str
    traces_endpoint: str
    metrics_endpoint: str
    logs_endpoint: str

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._exports = 0
        self.spans: list[ReceivedSpan] = []
        self.metrics: list[ReceivedMetric] = []
        self.logs: list[ReceivedLog] = []
        self.raw_bodies: list[bytes] = []
        self.requests: list[ReceivedRequest] = []
        self.fail_with: int | None = None

    # -- lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread; ``with OtlpReceiver()`` calls this for you."""
        server = _Server((self._host, self._port), _Handler)
        server.receiver = self
        port = int(server.server_address[1])
        self.endpoint = f"http://{self._host}:{port}"
        self.traces_endpoint = self.endpoint + TRACES_PATH
        self.metrics_endpoint = self.endpoint + METRICS_PATH
        self.logs_endpoint = self.endpoint + LOGS_PATH
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- request handling (server threads)

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self._cond:
            self.raw_bodies.append(body)
            self.requests.append(ReceivedRequest(path, headers, body))
            self._cond.notify_all()
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != _PROTOBUF:
            return 415, f"only {_PROTOBUF} is supported, got {content_type!r}".encode()
        if self.fail_with is not None:
            return self.fail_with, b"failure injected by the test"
        try:
            if path == TRACES_PATH:
                traces = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                spans = _decode_spans(traces)
                with self._cond:
                    self.spans.extend(spans)
                    self._cond.notify_all()
                return 200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            if path == METRICS_PATH:
                request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                with self._cond:
                    export, self._exports = self._exports, self._exports + 1
                    self.metrics.extend(_decode_metrics(request, export))
                    self._cond.notify_all()
                return 200, metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            if path == LOGS_PATH:
                logs = _decode_logs(logs_service_pb2.ExportLogsServiceRequest.FromString(body))
                with self._cond:
                    self.logs.extend(logs)
                    self._cond.notify_all()
                return 200, logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        except Exception as exc:  # a malformed body is the sender's bug: report it, keep serving
            return 400, f"cannot decode protobuf: {exc}".encode()
        return 404, f"unknown OTLP path {path!r}".encode()

    # -- test-side API

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Block until ``predicate()`` (evaluated under the lock) is true; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; received {len(self.spans)} spans "
                        f"{[s.name for s in self.spans]}, {len(self.metrics)} metrics, {len(self.requests)} requests"
                    )
                self._cond.wait(remaining)

    def wait_for_spans(self, n: int, timeout: float = 5.0) -> list[ReceivedSpan]:
        """Wait until at least ``n`` spans arrived and return a snapshot of all of them."""
        self.wait_for(lambda: len(self.spans) >= n, timeout, f"{n} spans")
        with self._cond:
            return list(self.spans)

    def wait_for_logs(self, n: int, timeout: float = 5.0) -> list[ReceivedLog]:
        """Wait until at least ``n`` log records arrived and return a snapshot of all of them."""
        self.wait_for(lambda: len(self.logs) >= n, timeout, f"{n} log records")
        with self._cond:
            return list(self.logs)

    def wait_for_metric(self, name: str, timeout: float = 5.0) -> list[ReceivedPoint]:
        """Wait until metric ``name`` arrived and return its latest points (see ``metric_points``)."""
        self.wait_for(lambda: any(m.name == name for m in self.metrics), timeout, f"metric {name!r}")
        with self._cond:
            return metric_points(self.metrics, name)

    def points(self, name: str) -> list[ReceivedPoint]:
        """Latest points of ``name`` received so far (no waiting)."""
        with self._cond:
            return metric_points(self.metrics, name)

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        """Spans received so far with this exact name."""
        with self._cond:
            return [s for s in self.spans if s.name == name]

    def clear(self) -> None:
        """Forget everything received so far (export numbering keeps increasing, so ordering stays valid)."""
        with self._cond:
            self.spans.clear()
            self.metrics.clear()
            self.raw_bodies.clear()
            self.requests.clear()
