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
    assert set(summary["deployments"]) == {"gpt-4o-mini", "o4-mini", "gpt-5", "text-embedding-3-small", "gpt-5.4-mini",
                                           "gpt-4o-transcribe", "gpt-4o-mini-tts", "gpt-image-1", "unknown"}
    assert set(summary["teams"]) == {"search", "ads", "research"}
    # the one-off calls run one at a time, so each lands on its own team
    assert {team: tally["errors"] for team, tally in summary["teams"].items()} == {
        "search": 3, "ads": 1, "research": 1}  # search: the early-closed stream and the 2 calls a budget refused
    # plain token calls are all priced (a kind whose price is not published yet is counted as unpriced, never 0)
    for deployment in ("gpt-4o-mini", "o4-mini", "text-embedding-3-small", "gpt-5.4-mini", "gpt-4o-transcribe"):
        assert summary["deployments"][deployment]["unpriced"] == 0, deployment
    assert summary["totals"]["unpriced"] == sum(t["unpriced"] for t in summary["deployments"].values())
    assert metric_sum(text, names.time_to_first_token_seconds(names.DEFAULT_NAMESPACE) + "_count") > 0
    assert 'api="responses"' in text and 'api="embeddings"' in text


def test_the_demo_shows_a_soft_budget_crossing_its_alerts_and_a_hard_one_refusing(
        served_demo: tuple[dict[str, Any], str, float]) -> None:
    summary, text, _ = served_demo
    assert summary["outcomes"].get("http_error (budget_exceeded)") == 2  # meter's own 429s, not retried
    budgets = {b["name"]: b for b in summary["budgets"]}
    assert set(budgets) == {"ads-daily", "sandbox-hard"}
    soft, hard = budgets["ads-daily"], budgets["sandbox-hard"]
    assert soft["enforce"] == "soft" and soft["alerts_fired"][:2] == ["50%", "80%"] and soft["refused_calls"] == 0
    assert Decimal(soft["spent_usd"]) == Decimal(summary["teams"]["ads"]["cost_usd"])  # every ads call, priced
    assert hard["enforce"] == "hard" and hard["refused_calls"] == 2
    assert Decimal(hard["spent_usd"]) + Decimal("0.0001") <= Decimal(hard["limit_usd"])
    ns = names.DEFAULT_NAMESPACE
    assert metric_sum(text, names.budget_refused_total(ns), budget="sandbox-hard") == 2
    assert metric_sum(text, names.budget_spent_usd(ns), budget="ads-daily") == pytest.approx(
        float(soft["spent_usd"]))
    assert metric_sum(text, names.budget_limit_usd(ns), budget="sandbox-hard", enforce="hard") == 0.0002


def test_demo_table_in_a_terminal_run() -> None:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "meter", "demo", "--requests", "20", "--metrics-port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    out = result.stdout
    assert "per deployment" in out and "per team" in out and "cost USD" in out
    assert "2 http_error (budget_exceeded)" in out
    (hard,) = [line for line in out.splitlines() if line.startswith("  sandbox-hard ")]
    assert "hard day" in hard and "refused 2 calls" in hard and "of 0.0002 USD" in hard
    assert any(line.startswith("  ads-daily ") and "soft day" in line for line in out.splitlines())
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
    ledger = Path(read_json_text(result.stdout)["ledger"])
    assert ledger.parent == tmp_path and ledger.name.startswith("meter-demo-") and ledger.suffix == ".sqlite"
    assert ledger.stat().st_size > 0


def read_json_text(text: str) -> dict[str, Any]:
    import json

    return dict(json.loads(text[text.index("{"):]))


def _money(cell: str) -> tuple[Decimal, int]:
    """A cost cell as (the known amount, the calls it leaves out): ``0.5``, ``0.5 + 2 unpriced``,
    ``unknown (2 unpriced)``."""
    import re

    if match := re.fullmatch(r"unknown \((\d+) unpriced\)", cell):
        return Decimal(0), int(match[1])
    if match := re.fullmatch(r"(\S+) \+ (\d+) unpriced", cell):
        return Decimal(match[1]), int(match[2])
    return Decimal(cell), 0


SECTIONS = {"per deployment": "deployment:", "per team": "team:", "per kind of call": "kind:",
            "per service tier": "tier:"}


def _demo_table(out: str) -> dict[str, tuple[int, Decimal, int]]:
    """The demo table's rows, ``deployment:NAME``, ``team:NAME``, ``kind:API``, ``tier:TIER`` and ``total``, as
    (calls, cost, unpriced)."""
    import re

    rows: dict[str, tuple[int, Decimal, int]] = {}
    section = ""
    for line in out.splitlines():
        if line in SECTIONS:
            section = SECTIONS[line]
        match = re.fullmatch(r"(\s*\S+)\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+(\S.*)", line)
        if match:
            name = match[1].strip()
            rows["total" if name == "total" else section + name] = (int(match[2]), *_money(match[3]))
    return rows


def _report_table(out: str) -> list[dict[str, str]]:
    """``meter report``'s table as dicts by header (columns are two spaces or more apart)."""
    import re

    lines = out.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    return [dict(zip(header, re.split(r"\s{2,}", line), strict=True)) for line in lines[1:]]


def test_each_run_has_its_own_ledger_and_its_report_command_shows_its_table(tmp_path: Path) -> None:
    """The report command the demo prints must show what the demo's table shows, on every run: one shared
    default ledger grew across runs (and across test suites), so a second run's report showed both runs."""
    import os
    import re
    import shlex

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    ledgers = set()
    for _ in range(2):
        demo = _demo("--requests", "13", "--metrics-port", "0", env=env)  # the last --requests wins
        assert demo.returncode == 0, demo.stderr[-2000:]
        table = _demo_table(demo.stdout)
        (hint,) = [line for line in demo.stdout.splitlines() if line.strip().startswith("ledger:")]
        words = shlex.split(hint.split("ledger:", 1)[1].split("(")[0])
        assert words[:2] == ["meter", "report"], hint
        ledgers.add(words[words.index("--ledger") + 1])
        done = subprocess.run([sys.executable, "-m", "meter", *words[1:]], capture_output=True, text=True,
                              timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        rows = _report_table(done.stdout)
        for key in ("team", "deployment"):
            sums: dict[str, tuple[int, Decimal, int]] = {}
            for row in rows:
                calls, cost, unpriced = sums.get(row[key], (0, Decimal(0), 0))
                known, left_out = _money(row["cost USD"])
                sums[row[key]] = (calls + int(row["calls"]), cost + known, unpriced + left_out)
            assert sums == {name.split(":", 1)[1]: tally for name, tally in table.items()
                            if name.startswith(key + ":")}, (done.stdout, demo.stdout)
        total = (sum(t[0] for t in sums.values()), sum((t[1] for t in sums.values()), Decimal(0)),
                 sum(t[2] for t in sums.values()))
        assert total == table["total"], (done.stdout, demo.stdout)
        # an embeddings call costs well under a millionth of a dollar: shown exactly, never as a rounded 0
        calls, cost, _ = table["deployment:text-embedding-3-small"]
        assert calls and cost > 0, demo.stdout
        # 13 calls, 14 records: the line under the table says why the two differ
        assert re.search(r"^14 records for 13 calls in [0-9.]+ s \(the openai SDK retried 1 answer, a 429, and "
                         r"meter keeps a record per HTTP attempt\)", demo.stdout, re.M), demo.stdout
        assert table["total"][0] == 14
    assert len(ledgers) == 2 and all(Path(path).parent == tmp_path for path in ledgers), ledgers


def test_the_closing_hint_offers_curl_only_while_the_server_is_up() -> None:
    done = _demo("--metrics-port", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [line for line in done.stdout.splitlines() if line.strip().startswith("metrics:")]
    assert "curl http" not in line and "stopped now; add --serve" in line, line


def test_a_taken_default_port_with_serve_serves_elsewhere_and_says_where() -> None:
    """Run as a user runs it with something on 9464: one line on stderr, and every URL printed is the one served."""
    import socket

    from meter.apps.demo.cli import DEFAULT_METRICS_PORT

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DEFAULT_METRICS_PORT))
        holder.listen()
    except OSError:
        pass  # something of the user's holds it already: the same situation
    proc = subprocess.Popen([sys.executable, "-m", "meter", "demo", "--requests", "3", "--serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = ""
        deadline = time.monotonic() + 60
        while "until Ctrl-C" not in out and time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            out += line
        (curl,) = [line for line in out.splitlines() if line.strip().startswith("metrics:")]
        url = curl.split("curl ", 1)[1].split()[0]
        assert f":{DEFAULT_METRICS_PORT}/" not in out and url in out.splitlines()[-1], out
        assert "llm_requests_total" in httpx2.get(url, timeout=10).text
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=30)
        holder.close()
    assert proc.returncode == 0, err
    assert err.strip().splitlines() == [f"meter demo: port {DEFAULT_METRICS_PORT} is in use; serving /metrics on "
                                        f"port {url.split(':')[2].split('/')[0]} instead"], err


def test_the_table_and_the_ledger_show_tools_tiers_and_what_is_billed_beyond_tokens(tmp_path: Path) -> None:
    """An agent turn (web search and code interpreter, two calls in one container), a priority and a flex call,
    a transcription, speech, an image and a small batch: each is a row of the table's kinds and tiers, the tool
    calls are listed under it, and the ledger keeps them, with the tier each call was priced at."""
    import re
    import sqlite3

    ledger = tmp_path / "demo.sqlite"
    demo = _demo("--requests", "22", "--metrics-port", "0", "--ledger", str(ledger))
    assert demo.returncode == 0, demo.stderr[-2000:]
    table = _demo_table(demo.stdout)
    for kind in ("chat", "responses", "embeddings", "transcriptions", "speech", "images", "batch_output"):
        assert table[f"kind:{kind}"][0] >= 1, (kind, demo.stdout)
    assert table["tier:priority"][0] >= 1 and table["tier:flex"][0] >= 1, demo.stdout
    for section in ("deployment:", "team:", "kind:", "tier:"):  # every grouping adds up to the total
        rows = [v for k, v in table.items() if k.startswith(section)]
        assert (sum(r[0] for r in rows), sum((r[1] for r in rows), Decimal(0)), sum(r[2] for r in rows)) == (
            table["total"]), section
    for name, (_, cost, unpriced) in table.items():  # an unpriced call is said so, never folded into a 0
        assert unpriced or cost > 0 or name.startswith("tier:(none)"), (name, demo.stdout)
    beyond = re.search(r"^billed beyond tokens.*\n((?:  .*\n)+)", demo.stdout, re.M)
    assert beyond is not None, demo.stdout
    (gpt5,) = [line for line in beyond[1].splitlines() if line.split()[0] == "gpt-5"]
    searches = int(re.search(r"(\d+) web searches", gpt5)[1])  # type: ignore[index]
    sessions = int(re.search(r"(\d+) code interpreter sessions", gpt5)[1])  # type: ignore[index]
    assert searches == sessions >= 1  # each agent turn: one search, two calls in one container

    with sqlite3.connect(ledger) as db:
        apis = {api for (api,) in db.execute("SELECT DISTINCT api FROM calls")}
        tiers = dict(db.execute("SELECT service_tier, deployment_type FROM calls WHERE service_tier IN "
                                "('priority', 'flex') GROUP BY service_tier"))
        tools = db.execute("SELECT sum(web_search_calls), sum(code_interpreter_sessions) FROM calls").fetchone()
        batch = db.execute("SELECT count(*), sum(input_tokens) FROM calls WHERE api = 'batch_output'").fetchone()
    assert {"transcriptions", "speech", "images", "batch_output"} <= apis
    assert tiers == {"priority": "GlobalPriority", "flex": "GlobalFlex"}
    assert tuple(tools) == (searches, sessions)
    assert batch[0] == 1 and batch[1] > 0
    report = subprocess.run([sys.executable, "-m", "meter", "report", "--ledger", str(ledger), "--by", "service_tier"],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert {row["service_tier"] for row in _report_table(report.stdout)} >= {"priority", "flex", "default"}
