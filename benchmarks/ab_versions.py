"""A/B of meter at two trees: the time a metered chat JSON call adds over the raw transport.

    python benchmarks/ab_versions.py TREE [--profile [PATH-FILTER]]

TREE is a checkout of meter (a ``git worktree`` of another commit); it is put first on ``sys.path``, so
run the script once per tree, alone on the machine, and compare. Five alternating rounds of 2,000 raw
and 2,000 metered calls through ``httpx2.MockTransport``, with an SDK tracer and meter provider
(in-memory exporters, as the peers harness sets them); prints the median of what meter adds. The
harness's rounds vary by more than the few µs a change costs; this settles them (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

URL = "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
PAYLOAD = {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o"}
BODY = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 1234, "completion_tokens": 567, "total_tokens": 1801,
              "prompt_tokens_details": {"cached_tokens": 1024}, "completion_tokens_details": {"reasoning_tokens": 128}},
}).encode()


def _timed(client: Any, calls: int, clear: Any) -> float:
    """Microseconds a call, ``calls`` calls (the span exporter emptied every 200 calls)."""
    started = time.perf_counter()
    for i in range(calls):
        client.post(URL, json=PAYLOAD)
        if i % 200 == 0:
            clear()
    return (time.perf_counter() - started) / calls * 1e6


def main(argv: list[str]) -> int:
    tree = argv[0]
    sys.path.insert(0, tree)
    import httpx2
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client import CollectorRegistry

    meter = importlib.import_module("meter")  # the tree's, first on sys.path
    if not str(meter.__file__).startswith(tree):
        print(f"error: meter came from {meter.__file__}, not {tree}", file=sys.stderr)
        return 2
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def azure(request: Any) -> Any:
        headers = {"content-type": "application/json", "x-ms-region": "East US"}
        return httpx2.Response(200, content=BODY, headers=headers)

    m = meter.Meter(registry=CollectorRegistry(), tracer_provider=tracer_provider, meter_provider=meter_provider)
    raw = httpx2.Client(transport=httpx2.MockTransport(azure))
    metered = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    _timed(raw, 500, spans.clear)
    _timed(metered, 500, spans.clear)
    added = sorted(_timed(metered, 2000, spans.clear) - _timed(raw, 2000, spans.clear) for _ in range(5))
    print(f"{tree}: meter adds {added[2]:.1f} us a call (median of 5 rounds: {[round(a, 1) for a in added]})")
    if "--profile" in argv:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        _timed(metered, 3000, spans.clear)
        profile.disable()
        only = argv[argv.index("--profile") + 1] if argv[-1] != "--profile" else ""
        pstats.Stats(profile).sort_stats("tottime").print_stats(only, 40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
