"""Memory: meter's peak RSS on one very long stream and over many sequential calls must stay flat.

Each measurement runs in its own interpreter (peak RSS, ``ru_maxrss``, only grows), raw and
metered side by side, so the difference is meter's. The long stream goes through a plain
httpx2 client (the SDK would take minutes to parse 100k events and adds nothing to measure);
the sequential calls go through the openai SDK with every sink on.
"""

from __future__ import annotations

from typing import Any

from benchmarks.subproc import run_python

_STREAM = """
    import json, resource, httpx2, meter
    from prometheus_client import CollectorRegistry
    from benchmarks.azure import HEADERS, chat_events

    events = chat_events(3)
    head, delta, tail = events[0], events[1], events[-3:]
    n = {events}

    class Body(httpx2.SyncByteStream):
        def __iter__(self):
            yield head
            for _ in range(n):
                yield delta
            yield from tail

    class Azure(httpx2.BaseTransport):
        def handle_request(self, request):
            return httpx2.Response(200, headers=[*HEADERS, ("content-type", "text/event-stream")], stream=Body(),
                                   request=request)

    records = []
    transport = Azure()
    m = None
    if {metered}:
        m = meter.Meter(registry=CollectorRegistry(), otel=False, on_record=records.append)
        transport = meter.MeteredTransport(transport, meter=m)
    client = httpx2.Client(transport=transport)
    url = "https://bench.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-04-01-preview"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = 0
    with client.stream("POST", url, json={{"messages": [], "stream": True}}) as response:
        for chunk in response.iter_raw():
            seen += 1
    if m is not None:  # the metering worker's backlog (held chunks) is part of the peak
        assert m.flush(120)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert seen == n + 4, seen
    if {metered}:
        assert len(records) == 1 and records[0].usage is not None, records
    print(json.dumps({{"before_mb": before / 1024, "peak_mb": after / 1024}}))
"""

_CALLS = """
    import json, resource, sys
    from benchmarks.azure import Answers
    from benchmarks.overhead import arm_meter, sync_client, sync_call

    n = {calls}
    m = arm_meter("{arm}")
    client = sync_client("{arm}", Answers(500), m)
    call = sync_call("S1")
    marks = {{}}
    for i in range(1, n + 1):
        call(client)
        if i == n and m is not None:  # the metering worker's backlog is part of the peak
            assert m.flush(120)
        if i in (n // 10, n // 2, n):
            marks[i] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({{"peak_mb_at": marks}}))
"""


def long_stream(events: int) -> dict[str, Any]:
    """Peak RSS of one ``events``-delta chat stream read to its end, raw and metered."""
    out: dict[str, Any] = {"events": events}
    for arm, metered in (("raw", False), ("meter", True)):
        out[arm] = run_python(_STREAM.format(events=events, metered=metered), timeout=600)
    out["meter_minus_raw_mb"] = out["meter"]["peak_mb"] - out["raw"]["peak_mb"]
    return out


def sequential_calls(calls: int) -> dict[str, Any]:
    """Peak RSS after 10 %, 50 % and 100 % of ``calls`` S1 calls, raw and with every sink on."""
    out: dict[str, Any] = {"calls": calls}
    for arm in ("raw", "full"):
        marks = run_python(_CALLS.format(calls=calls, arm=arm), timeout=1200)["peak_mb_at"]
        values = [marks[k] for k in sorted(marks, key=int)]
        out[arm] = {"peak_mb_at": marks, "growth_after_10pct_mb": values[-1] - values[0]}
    return out
