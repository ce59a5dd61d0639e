"""meter: usage, cost, latency and failures of every Azure OpenAI call, at the HTTP transport.

Public API (documented in the README): ``Meter``, ``wrap``, ``MeteredTransport``,
``AsyncMeteredTransport``, ``CallRecord``, ``CallStart``, ``Usage``, ``AzureHeaders``, ``Sink``,
``QueuedSubscriber``,
``attribute``, ``default_meter``, ``set_default_meter``, ``start_metrics_server``,
``metrics_wsgi_app``, ``metrics_asgi_app``, ``multiprocess_registry``, ``mark_process_dead``, ``setup_otel``.
"""

from meter._version import __version__
from meter.adapters.transport import AsyncMeteredTransport, MeteredTransport
from meter.adapters.wrap import wrap
from meter.attribution import attribute
from meter.core.record import AzureHeaders, CallRecord, Usage
from meter.core.sink import Sink
from meter.core.start import CallStart
from meter.hub import Meter, default_meter, set_default_meter
from meter.otel_setup import setup_otel
from meter.queued import QueuedSubscriber
from meter.serve import (
    mark_process_dead,
    metrics_asgi_app,
    metrics_wsgi_app,
    multiprocess_registry,
    start_metrics_server,
)

__all__ = [
    "AsyncMeteredTransport",
    "AzureHeaders",
    "CallRecord",
    "CallStart",
    "Meter",
    "MeteredTransport",
    "QueuedSubscriber",
    "Sink",
    "Usage",
    "__version__",
    "attribute",
    "default_meter",
    "mark_process_dead",
    "metrics_asgi_app",
    "metrics_wsgi_app",
    "multiprocess_registry",
    "set_default_meter",
    "setup_otel",
    "start_metrics_server",
    "wrap",
]
