"""``meter demo --start-after-scrape``: the workload waits for the first scrape, which so sees every counter before
the calls that move it (the dashboard pictures' "Calls refused by budget (range)" read 0 without it)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx2

from meter import names
from tests.demo.test_demo import metric_sum
from tests.support.processes import read_json
from tests.support.prometheus import free_port


def test_the_first_scrape_comes_before_the_first_call() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "meter", "demo", "--requests", "40", "--json", "--serve",
                             "--start-after-scrape", "60", "--metrics-port", str(port), "--ledger", ""],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ns = names.DEFAULT_NAMESPACE
    try:
        time.sleep(5)  # without the wait, the demo's 40 calls are done by now
        deadline = time.monotonic() + 60
        while True:  # the server is up before the Meter: scrape until its budget families are there
            try:
                first = httpx2.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx2.TransportError:
                first = ""
            if names.budget_refused_total(ns) in first or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert f'{names.budget_refused_total(ns)}{{budget="sandbox-hard"}} 0.0' in first
        assert metric_sum(first, names.requests_total(ns)) == 0
        summary = read_json(proc, timeout=60)
        text = httpx2.get(summary["metrics_url"]).text
        assert metric_sum(text, names.budget_refused_total(ns), budget="sandbox-hard") == 2
        assert metric_sum(text, names.requests_total(ns)) == summary["totals"]["requests"] >= 40
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
