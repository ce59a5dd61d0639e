"""`meter demo` end to end, as a user runs it: a subprocess, its --json totals against its /metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meter import names
from tests.support.processes import read_json


@pytest.fixture(scope="module")
def served_demo() -> Iterator[tuple[dict[str, Any], str, float]]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "meter", "demo", "--requests", "40", "--json", "--serve",
                             "--metrics-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        summary = read_json(proc, timeout=60)
        elapsed = time.monotonic() - started
        text = httpx2.get(summary["metrics_url"]).text
        yield summary, text, elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def metric_sum(text: str, name: str, **match: str) -> float:
    value = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
                value += sample.value
    return value


def test_demo_totals_equal_its_metrics(served_demo: tuple[dict[str, Any], str, float]) -> None:
    summary, text, elapsed = served_demo
    totals = summary["totals"]
    assert totals["requests"] >= 40 and elapsed < 30
    ns = names.DEFAULT_NAMESPACE
    assert metric_sum(text, names.requests_total(ns)) == totals["requests"]
    assert metric_sum(text, names.input_tokens_total(ns)) == totals["input_tokens"] > 0
    assert metric_sum(text, names.cached_input_tokens_total(ns)) == totals["cached_input_tokens"] > 0
    assert metric_sum(text, names.output_tokens_total(ns)) == totals["output_tokens"] > 0
    assert metric_sum(text, names.reasoning_output_tokens_total(ns)) == totals["reasoning_output_tokens"] > 0
    assert metric_sum(text, names.cost_usd_total(ns)) == pytest.approx(float(Decimal(totals["cost_usd"])), rel=1e-9)
    assert metric_sum(text, names.estimated_requests_total(ns)) == totals["estimated"] > 0
    assert metric_sum(text, names.estimated_output_tokens_total(ns)) == totals["estimated_output_tokens"] > 0
    assert metric_sum(text, names.estimated_cost_usd_total(ns)) == pytest.approx(
        float(Decimal(totals["estimated_cost_usd"])), rel=1e-9)
    for deployment, tally in summary["deployments"].items():
        assert metric_sum(text, names.cost_usd_total(ns), deployment=deployment) == pytest.approx(
            float(Decimal(tally["cost_usd"])), rel=1e-9, abs=1e-12)
        assert metric_sum(text, names.output_tokens_total(ns), deployment=deployment) == tally["output_tokens"]
    for team, tally in summary["teams"].items():
        assert metric_sum(text, names.requests_total(ns), team=team) == tally["requests"]


def test_demo_workload_has_every_kind_of_call(served_demo: tuple[dict[str, Any], str, float]) -> None:
    summary, text, _ = served_demo
    outcomes = summary["outcomes"]
    assert outcomes.get("http_error (429)") == 1  # retried by the SDK: the retry is one of the ok calls
    assert outcomes.get("http_error (content_filter)") == 1
    assert outcomes.get("aborted") == 1  # the early-closed stream
    assert set(summary["deployments"]) == {"gpt-4o-mini", "o4-mini", "gpt-5", "text-embedding-3-small"}
    assert set(summary["teams"]) == {"search", "ads", "research"}
    # the one-off calls run one at a time, so each lands on its own team
    assert {team: tally["errors"] for team, tally in summary["teams"].items()} == {
        "search": 1, "ads": 1, "research": 1}
    assert summary["totals"]["unpriced"] == 0
    assert metric_sum(text, names.time_to_first_token_seconds(names.DEFAULT_NAMESPACE) + "_count") > 0
    assert 'api="responses"' in text and 'api="embeddings"' in text


def test_demo_table_in_a_terminal_run() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "meter", "demo", "--requests", "20", "--metrics-port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    out = result.stdout
    assert "per deployment" in out and "per team" in out and "cost USD" in out
    assert "/metrics" in out and "spans" in out


def _demo(*options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meter", "demo", "--requests", "2", *options],
                          capture_output=True, text=True, timeout=60, env=env)


def test_the_default_metrics_port_taken_moves_to_a_free_one_and_says_so() -> None:
    """The README's demo command must run on a machine where something already serves 9464."""
    import socket

    from meter.apps.demo.cli import DEFAULT_METRICS_PORT

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_METRICS_PORT))
        holder.listen()
    except OSError:
        pass  # something of the user's holds it already: the same situation
    try:
        result = _demo()
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"port {DEFAULT_METRICS_PORT} is in use; serving /metrics on port" in result.stderr
        assert f":{DEFAULT_METRICS_PORT}/metrics" not in result.stdout
        chosen = _demo("--metrics-port", str(DEFAULT_METRICS_PORT))  # a port the user named is theirs: an error
        assert chosen.returncode == 2
        [line] = chosen.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot serve /metrics on 127.0.0.1:{DEFAULT_METRICS_PORT}")
        assert "--metrics-port 0" in line
    finally:
        holder.close()


def test_the_default_ledger_is_in_the_temporary_folder_of_the_process(tmp_path: Path) -> None:
    """The suite's processes get a temporary folder of the run's own (tests/conftest.py), so the demo's default
    ledger is written there, never into a file another run or the user keeps in the shared one."""
    import os
    import tempfile

    assert os.environ["TMPDIR"] != tempfile.gettempdir()
    result = _demo("--json", "--metrics-port", "0", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json_text(result.stdout)["ledger"] == str(tmp_path / "meter-demo.sqlite")
    assert (tmp_path / "meter-demo.sqlite").stat().st_size > 0


def read_json_text(text: str) -> dict[str, Any]:
    import json

    return dict(json.loads(text[text.index("{"):]))
