"""An ASGI service as a user deploys it under ``uvicorn --workers N`` with ``PROMETHEUS_MULTIPROC_DIR`` set.

Every worker imports this module: one ``Meter`` (``otel=False``: the trace ids come from the
application's own spans, as in a service that traces itself), the openai clients wrapped, and two
routes: ``POST /work`` runs the telemetry workload against the replay server at ``$UPSTREAM_URL``
under a span of the application's, attributed to ``worker=w<pid>`` (each worker its own series), and
answers the worker's pid and the trace ids its records carry; ``GET /metrics`` is
``meter.metrics_asgi_app()``, which merges every worker's files, exemplars included.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import meter
from tests.support.replay import ReplayServer
from tests.telemetry.workload import run_workload

_records: list[meter.CallRecord] = []
"""Every record of this worker; a request finds its own by the ``request`` attribute it set."""
_lock = threading.Lock()


def _keep(record: meter.CallRecord) -> None:
    with _lock:
        _records.append(record)


_meter = meter.Meter(otel=False, label_keys=("team", "worker"), on_record=_keep)
_tracer = TracerProvider().get_tracer("multiprocess-app")
_metrics = meter.metrics_asgi_app()


class _Upstream(ReplayServer):
    """Only the URL of the test's replay server: ``run_workload`` reads ``srv.url``."""

    def __init__(self, url: str) -> None:  # no socket of its own
        self.url = url


def _work() -> dict[str, Any]:
    request = uuid.uuid4().hex
    with _tracer.start_as_current_span("handler"), meter.attribute(worker=f"w{os.getpid()}", request=request):
        run_workload(_Upstream(os.environ["UPSTREAM_URL"]), _meter)
        span_trace = format(trace.get_current_span().get_span_context().trace_id, "032x")
    flush = getattr(_meter, "flush", None)
    if flush is not None:  # records may be made on a metering thread: wait for this request's
        flush()
    with _lock:
        records = [r for r in _records if r.attributes.get("request") == request]
    return {"pid": os.getpid(), "span_trace_id": span_trace, "calls": len(records),
            "trace_ids": sorted({r.trace_id for r in records if r.trace_id})}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/metrics":
        await _metrics(scope, receive, send)
        return
    if scope["type"] != "http" or scope["path"] != "/work":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps(await asyncio.to_thread(_work)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
