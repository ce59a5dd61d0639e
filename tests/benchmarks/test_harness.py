"""The benchmark harness runs end to end (``python -m benchmarks --quick``): a smoke test, no timing asserted.

What it checks is that every part produced its numbers and that the metered arms really
metered (a harness that silently measured raw against raw would report a perfect 1.0).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_produces_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(out.read_text())
    overhead = result["overhead"]
    assert sorted(overhead) == ["A1", "A2", "A3", "A4", "S1", "S2", "S3", "S4"]
    for arms in overhead.values():
        assert sorted(arms) == ["full", "inline", "pricing", "prometheus", "raw"]
        assert all(arm["median_us"] > 0 and arm["throughput_us"] > 0 and arm["samples"] == arms["raw"]["samples"] > 0
                   for arm in arms.values())
    caller = result["caller"]
    assert len(caller["rows"]) == 16 and caller["wrapper_ns_per_entry"] > 0
    for row in caller["rows"].values():  # meter's two entries per JSON call were timed: start, then attach
        assert row["entries_per_call"] == 2 and set(row["p50_by_entry_us"]) == {"start", "attach"}, row
        assert row["calls"] == 50 and 0 < row["p50_us"] <= row["p99_us"], row
    gil = result["gil"]  # both arms ran, and the waiter's turns were counted
    assert gil["alone"]["median_us"] > 0 and gil["waiter"]["median_us"] > 0 and gil["ratio"] > 0
    assert gil["waiter"]["hand_backs_per_call"] > 0 and len(gil["waiter"]["waiter_ran"]) == 1
    concurrency = result["concurrency"]
    assert len(concurrency) == 18
    for key, cell in concurrency.items():  # every call of each block metered by the end of its measurement
        assert cell["raw"]["cpu_us"] > 0 and cell["raw"]["records_per_block"] == 0, key
        for arm in ("worker", "inline"):
            assert cell[arm]["records_per_block"] == cell["calls"] and cell[arm]["cpu_us"] > 0, (key, arm, cell)
    memory = result["memory"]
    assert memory["stream"]["meter"]["peak_mb"] > 0 and memory["calls"]["full"]["peak_mb_at"]
    assert set(result["startup"]) == {"cold", "after_openai"}
    for mode in ("json", "stream", "json, 1 client", "stream, 1 client"):
        proxy = result["proxy"][mode]
        assert proxy["direct"]["requests"] > 0 and proxy["proxy"]["requests"] > 0
        assert proxy["direct"]["errors"] == 0 and proxy["proxy"]["errors"] == 0
    for row in result["budgets"].values():  # the shared store: a local slice, and the takes counted
        assert row["sqlite"]["per_call_us"] > 0 and 0 < row["sqlite"]["round_trips_per_1000"] < 1000
    for heading in ("Per-call overhead", "Caller's thread", "One more thread", "Concurrency", "Memory", "Start-up",
                    "Proxy", "Shared budgets"):
        assert f"## {heading}" in done.stdout


def test_the_metered_arms_meter() -> None:
    """Each meter arm produces records (and the full arms spans), in the metering mode it says; the raw arm is
    the bare transport."""
    code = """
import meter
from benchmarks.azure import Answers
from benchmarks import overhead
records = []
for arm in overhead.ARMS:
    client = overhead.sync_client(arm, Answers(5))
    transport = client._client._transport
    if arm == "raw":
        assert not isinstance(transport, meter.MeteredTransport), transport
        continue
    assert isinstance(transport, meter.MeteredTransport), transport
    assert transport.meter.metering == ("inline" if arm == "inline" else "worker"), (arm, transport.meter.metering)
    transport.meter.subscribe(records.append)
    for scenario in ("S1", "S2", "S3", "S4"):
        overhead.sync_call(scenario)(client)
    assert transport.meter.flush(30)
assert len(records) == 16, len(records)
assert all(r.usage is not None and r.cost is not None and r.cost.total is not None for r in records), records
spans = [r.trace_id for r in records[-8:]]
assert all(spans), spans
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-4000:]


def test_the_stream_runs_ab_runs_both_arms_in_a_fresh_process() -> None:
    """``python -m benchmarks.stream_runs`` (docs/benchmarks.md, issue 25 fourth pass): both arms of both
    scenarios, each with a worker job timed (so each arm metered on the worker)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.stream_runs", "--rounds", "1", "--block", "2",
                           "--deltas", "50"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("S2 ", "S4 "))]
    assert [line.split()[:2] for line in lines] == [["S2", "runs"], ["S2", "one_by_one"], ["S4", "runs"],
                                                   ["S4", "one_by_one"]], done.stdout
    assert all("worker job" in line and "nan" not in line for line in lines), done.stdout
