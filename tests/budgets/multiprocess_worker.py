"""One worker of the multiprocess budget-gauge tests: ``python -m tests.budgets.multiprocess_worker '<json>'``.

Run with ``PROMETHEUS_MULTIPROC_DIR`` set. A Meter with the given budgets (on the ledger ``ledger``, or
each worker's own store when it is ``null``) makes calls tagged ``team=search`` until it has been refused
``refusals`` times (or made ``calls``), then holds one call tagged ``team=ads`` in flight, prints one JSON
line (the calls it let through, each costing 0.0075, those refused, and what its store says ``ads-hard``
holds) and waits for a line on stdin before it lets the call
end and closes the Meter.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import httpx2

import meter
from meter.sinks import prometheus_budget_files

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
BODY = {"max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
"""1000 input tokens at 2.5 USD/M + 500 output at 10 USD/M: 0.0075 a call."""


def main(settings: dict[str, Any]) -> None:
    prometheus_budget_files.REFRESH_S = 0.1  # the test polls the files; a second is the default
    prometheus_budget_files.IDLE_S = 0.3
    release = threading.Event()
    holding = threading.Event()

    def azure(request: httpx2.Request) -> httpx2.Response:
        if request.headers.get("x-hold"):
            holding.set()
            release.wait(60)
        return httpx2.Response(200, json={
            "id": "chatcmpl-t", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})

    m = meter.Meter(otel=False, budgets=settings["budgets"], ledger=settings["ledger"])
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    through = refused = 0
    with meter.attribute(team="search"):
        while refused < int(settings["refusals"]) and through < int(settings["calls"]):
            status = client.post(URL, json=BODY).status_code
            through += status == 200
            refused += status == 429

    def hold() -> None:
        with meter.attribute(team="ads"):
            client.post(URL, json=BODY, headers={"x-hold": "1"})

    held = threading.Thread(target=hold)
    held.start()
    assert holding.wait(30)
    reserved = next(s.reserved for s in m.budgets.store.status() if s.name == "ads-hard") if m.budgets else None
    print(json.dumps({"through": through, "refused": refused, "reserved": str(reserved)}), flush=True)
    sys.stdin.readline()
    release.set()
    held.join()
    m.close()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
