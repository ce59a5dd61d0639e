"""Serving ``/metrics``: a small server of its own, or an app to mount in the user's service.

Under a process manager with ``PROMETHEUS_MULTIPROC_DIR`` set, each worker
writes its metrics to that directory and whatever serves ``/metrics`` must
aggregate them; these helpers do that on their own when the variable is set.
What multiprocess mode loses: exemplars (not stored across processes) and live
gauges (the rate-limit gauges keep the most recent value any worker wrote).
"""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client import REGISTRY, CollectorRegistry

from meter.sinks.prometheus import multiprocess_mode


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    if multiprocess_mode():
        from prometheus_client import multiprocess

        aggregate = CollectorRegistry(support_collectors_without_names=True)
        multiprocess.MultiProcessCollector(aggregate)  # type: ignore[no-untyped-call]
        return aggregate
    return REGISTRY


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
