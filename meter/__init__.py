"""meter: usage, cost, latency and failures of every Azure OpenAI call, at the HTTP transport.

Public API (documented in the README): ``Meter``, ``wrap``, ``MeteredTransport``,
``AsyncMeteredTransport``, ``CallRecord``, ``Usage``, ``AzureHeaders``,
``attribute``, ``default_meter``, ``set_default_meter``.
"""

from meter._version import __version__
from meter.adapters.transport import AsyncMeteredTransport, MeteredTransport
from meter.adapters.wrap import wrap
from meter.attribution import attribute
from meter.meter import Meter, default_meter, set_default_meter
from meter.record import AzureHeaders, CallRecord, Usage

__all__ = [
    "AsyncMeteredTransport",
    "AzureHeaders",
    "CallRecord",
    "Meter",
    "MeteredTransport",
    "Usage",
    "__version__",
    "attribute",
    "default_meter",
    "set_default_meter",
    "wrap",
]
