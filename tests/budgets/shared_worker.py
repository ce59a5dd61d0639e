"""One process of the shared-budget tests: ``python -m tests.budgets.shared_worker '<json settings>'``.

``mode = "calls"``: ``threads`` threads each make calls (reserve its worst case, hold it ``hold_s`` as a
stream would, settle at a cost between ``low`` and the worst case) until ``calls`` calls or ``refusals``
refusals in a row; then the store is closed and one JSON line says what it let through and settled, and
the alerts this process fired (``alerts``: their thresholds, as ``"50%"``).
``mode = "hold"``: reserve ``calls`` calls, print ``held``, and wait (to be SIGKILLed).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from decimal import Decimal
from typing import Any

from meter.budget_store import shared_budgets
from meter.budgets import Refusal, load_budgets


def main(settings: dict[str, object]) -> None:
    if settings.get("mode") == "sdk":
        sdk(settings)
        return
    budgets = load_budgets(settings["budgets"])  # type: ignore[arg-type]
    store = shared_budgets(str(settings["url"]), budgets, lease_s=float(settings.get("lease_s", 15.0)),  # type: ignore[arg-type]
                           flush_s=float(settings.get("flush_s", 0.2)),  # type: ignore[arg-type]
                           slice_fraction=Decimal(str(settings.get("slice_fraction", "0.01"))),
                           retry_s=float(settings.get("retry_s", 0.2)))  # type: ignore[arg-type]
    fired: list[str] = []
    store.on_alert = lambda event: fired.append(event.percent)
    print("ready", flush=True)
    worst = Decimal(str(settings["worst"]))
    low = Decimal(str(settings.get("low", settings["worst"])))
    calls = int(settings.get("calls", 100))  # type: ignore[call-overload]
    if settings.get("mode") == "hold":
        for i in range(calls):
            assert not isinstance(store.reserve(f"h{i}", budgets, worst), Refusal)
        print("held", flush=True)
        time.sleep(600)
        return
    lock = threading.Lock()
    totals = {"through": 0, "refused": 0, "db_down_refused": 0}
    settled = [Decimal(0)]
    hold_s = float(settings.get("hold_s", 0.0))  # type: ignore[arg-type]
    refusals = int(settings.get("refusals", 10**9))  # type: ignore[call-overload]

    def work(n: int) -> None:
        rng = random.Random(n)
        in_a_row = 0
        for i in range(calls):
            got = store.reserve(f"{n}-{i}", budgets, worst)
            if isinstance(got, Refusal):
                with lock:
                    totals["refused"] += 1
                    totals["db_down_refused"] += got.reason == "db_down"
                in_a_row += 1
                if in_a_row >= refusals:
                    return
                time.sleep(0.005)
                continue
            in_a_row = 0
            if hold_s:
                time.sleep(rng.uniform(0, hold_s))
            cost = low + (worst - low) * Decimal(rng.randint(0, 1000)) / 1000
            store.settle(got, cost)
            with lock:
                totals["through"] += 1
                settled[0] += cost

    threads = [threading.Thread(target=work, args=(n,)) for n in range(int(settings.get("threads", 8)))]  # type: ignore[call-overload]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    closed = store.close()
    print(json.dumps({**totals, "settled": str(settled[0]), "round_trips": store.round_trips,
                      "db_down_calls": store.db_down_calls, "closed": closed, "alerts": fired}), flush=True)


def sdk(settings: dict[str, Any]) -> None:
    """``mode = "sdk"``: a Meter on the ledger, ``threads`` threads streaming chat calls through the openai SDK
    (its default retries) until each has been refused ``refusals`` times."""
    import openai

    import meter

    costs: list[Decimal] = []
    m = meter.Meter(otel=False, prometheus=False, budgets=settings["budgets"], ledger=settings["url"],
                    on_record=lambda r: costs.append(r.cost.total) if r.cost and r.cost.total is not None
                    and r.budgets else None)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=settings["server"], api_key="k",
                                           api_version="2024-10-21"), meter=m)
    lock = threading.Lock()
    totals = {"through": 0, "refused": 0, "other_errors": 0}

    def work() -> None:
        refused = 0
        while refused < int(settings.get("refusals", 3)):
            try:
                with meter.attribute(team="search"):
                    stream = client.chat.completions.create(model="gpt-4o", max_tokens=1000, stream=True,
                                                            messages=[{"role": "user", "content": "hello"}])
                    for _ in stream:
                        pass
                with lock:
                    totals["through"] += 1
            except openai.RateLimitError as exc:
                assert exc.code == "budget_exceeded", exc
                refused += 1
                with lock:
                    totals["refused"] += 1
                time.sleep(0.01)

    threads = [threading.Thread(target=work) for _ in range(int(settings.get("threads", 8)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.close()
    print(json.dumps({**totals, "settled": str(sum(costs, Decimal(0))), "records": len(costs)}), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
