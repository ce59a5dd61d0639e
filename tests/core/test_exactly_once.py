"""Exactly one record per call, even when its endings race across threads."""

from __future__ import annotations

import sys
import threading

import meter
from meter.core.headers import RawHeaders
from meter.hub import Meter


def test_concurrent_endings_emit_one_record() -> None:
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen any check-then-set race
    try:
        _race()
    finally:
        sys.setswitchinterval(old_interval)


def _race() -> None:
    records: list[meter.CallRecord] = []
    m = Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    for _ in range(200):
        begun = m.begin("POST", "res.openai.azure.com", None, "/openai/deployments/d/chat/completions",
                        "api-version=2024-10-21", {}, lambda: b'{"stream":true}')
        assert begun is not None
        call, _, _ = begun
        call.on_response(200, RawHeaders([(b"content-type", b"text/event-stream")]))
        barrier = threading.Barrier(6)

        def end(how: int, call: object = call, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            if how % 3 == 0:
                call.on_end()  # type: ignore[attr-defined]
            elif how % 3 == 1:
                call.on_close()  # type: ignore[attr-defined]
            else:
                call.on_error(RuntimeError("reset"))  # type: ignore[attr-defined]

        threads = [threading.Thread(target=end, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert m.flush(10)  # the records come on the metering worker
    assert len(records) == 200
