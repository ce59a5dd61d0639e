"""Serving ``/metrics``: a small server of its own, or an app to mount in the user's service.

Under a process manager with ``PROMETHEUS_MULTIPROC_DIR`` set, each worker
writes its metrics to that directory and whatever serves ``/metrics`` must
aggregate them; these helpers do that on their own when the variable is set,
exemplars included (each worker's latest ones, from the files meter keeps beside
prometheus-client's: ``meter.sinks.prometheus_exemplars``). What multiprocess mode
loses: live gauges (the rate-limit gauges keep the most recent value any worker wrote).
"""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client import REGISTRY, CollectorRegistry

from meter.sinks import prometheus_exemplars
from meter.sinks.prometheus import multiprocess_mode


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    if multiprocess_mode():
        return multiprocess_registry()
    return REGISTRY


def multiprocess_registry(path: str | None = None) -> CollectorRegistry:
    """A registry of every worker's metrics in ``path`` (default ``PROMETHEUS_MULTIPROC_DIR``), with their
    exemplars: for serving ``/metrics`` yourself (``prometheus_client.make_wsgi_app(multiprocess_registry())``)."""
    aggregate = CollectorRegistry(support_collectors_without_names=True)
    prometheus_exemplars.ExemplarMultiProcessCollector(aggregate, path)
    return aggregate


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """A worker has exited: prometheus-client's bookkeeping (its live gauges) and its exemplar file.

    For the process manager's hook, e.g. gunicorn's ``child_exit(server, worker)``:
    ``meter.mark_process_dead(worker.pid)``. Its counters and histograms stay counted, as in prometheus-client.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    prometheus_exemplars.mark_process_dead(pid, path)


def start_metrics_server(port: int = 9464, addr: str = "127.0.0.1",
                         registry: CollectorRegistry | None = None) -> tuple[Any, Any]:
    """Serve ``/metrics`` on ``addr:port`` (loopback by default; ``port=0`` picks a free one).

    Returns prometheus-client's ``(server, thread)``; ``server.server_port`` is the port.
    """
    return prometheus_client.start_http_server(port, addr=addr, registry=_registry(registry))


def metrics_wsgi_app(registry: CollectorRegistry | None = None) -> Any:
    """A WSGI app serving the metrics, to mount at ``/metrics`` in a Flask/Django/gunicorn service."""
    return prometheus_client.make_wsgi_app(_registry(registry))


def metrics_asgi_app(registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app serving the metrics, to mount at ``/metrics`` in a Starlette/FastAPI service."""
    return prometheus_client.make_asgi_app(_registry(registry))
