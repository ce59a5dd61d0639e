"""``--extra`` hook for ``../shared/bench/peers``: meter with pricing, Prometheus (its own registry) and OTel.

    python ../shared/bench/peers/run.py --extra meter=benchmarks/peers_hook.py:wrap --rounds 2 --async \\
        --out "$(mktemp -d)/peers.json"

The harness sets an SDK TracerProvider and MeterProvider globally, so ``Meter()``'s spans and
metrics go to them; each call of ``wrap`` gets a fresh Meter on a fresh registry. Set
``METER_BENCH_TREE`` to a checkout to measure another version of meter side by side.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if os.environ.get("METER_BENCH_TREE"):
    sys.path.insert(0, os.environ["METER_BENCH_TREE"])

from prometheus_client import CollectorRegistry

import meter


def wrap(base: Any) -> Any:
    m = meter.Meter(registry=CollectorRegistry())
    if hasattr(base, "handle_async_request"):
        return meter.AsyncMeteredTransport(base, meter=m)
    return meter.MeteredTransport(base, meter=m)
