"""Regenerate the dashboard pictures from a real run: ``python -m meter.dashboards.pictures [--seconds 120]``.

Starts a real Prometheus (the ``prometheus`` binary: Debian's package, or ``--prometheus PATH``)
scraping ``meter demo --seconds N --serve`` every second with meter's alert rules loaded, waits
for the run to end, then draws each dashboard from its JSON and that Prometheus over the run's
time range (``meter.dashboards.render``), and writes ``meter-*.png`` and ``pictures.json`` (the run:
command, range, calls, cost, and what every panel drew) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from meter import plotting
from meter.dashboards import boards
from meter.dashboards.queries import DEFAULT
from meter.dashboards.render import PrometheusHTTP, Source, macros, render_dashboard

ROOT = Path(__file__).resolve().parents[2] / "dashboards"
"""The repository's dashboards/ folder, where the generated files are committed (a checkout's tool)."""
SCRAPE_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _read_json(stream: IO[str], timeout: float) -> dict[str, Any]:
    """The first JSON object a process prints (``meter demo --json``), read line by line."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        text += line
        if line.startswith("}"):
            parsed: dict[str, Any] = json.loads(text[text.index("{"):])
            return parsed
    raise RuntimeError(f"meter demo printed no summary: {text[-2000:]}")


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Prometheus at {url} did not become ready")


def header(totals: dict[str, Any], source: Source, start: float, end: float, *, seconds: float,
           scrape_interval_s: float) -> str:
    """The pictures' subtitle. Its spend is the "Spend (range)" panel's own number (the same query over the same
    range, in the panel's unit and decimals) and its calls the same ``increase()`` of the calls counter; the demo's
    ledger totals are named apart: ``increase()`` cannot count what a series held at its first scrape, so
    Prometheus sees a little less than the ledger."""
    table, _ = macros(start, end, scrape_interval_s)
    panel = next(p for p in boards.cost_dashboard()["panels"] if p["title"] == "Spend (range)")
    defaults = panel["fieldConfig"]["defaults"]

    def value(expr: str) -> float:
        result = source.query(DEFAULT.substitute_macros(expr, table), end)
        return float(result[0]["value"][1]) if result else 0.0

    spend = plotting.format_value(value(panel["targets"][0]["expr"]), defaults["unit"], defaults.get("decimals"))
    calls = value(DEFAULT.sum_by((), DEFAULT.increase(DEFAULT.sel(DEFAULT.REQUESTS))))
    whole = math.floor(calls + 0.5)  # whole calls, rounded as Grafana rounds
    return (f"Rendered by meter from the dashboard JSON and real Prometheus data (not a Grafana screenshot)  ·  "
            f"meter demo --seconds {seconds:g}, scraped every {scrape_interval_s:g} s  ·  "
            f"regenerate: python -m meter.dashboards.pictures --seconds {seconds:g}\n"
            f"In Prometheus over the range: Spend (range) {spend}, {whole:,} calls (increase() of the counters, as the "
            f"panels read them).  The demo's own ledger: {int(totals['requests']):,} calls, "
            f"USD {float(totals['cost_usd']):.4f} (it also holds what each series had reached by its first scrape, "
            f"which increase() cannot count).")


def make(out: Path, seconds: float, prometheus: str, requests: int = 40) -> dict[str, Any]:
    binary = shutil.which(prometheus) or prometheus
    if not Path(binary).exists():
        raise RuntimeError(f"no Prometheus binary {prometheus!r}: apt-get install -y prometheus, or --prometheus PATH")
    tmp = Path(tempfile.mkdtemp(prefix="meter-pictures-"))
    metrics_port, prom_port = _free_port(), _free_port()
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": f"{int(SCRAPE_S)}s", "evaluation_interval": f"{int(SCRAPE_S)}s"},
        "rule_files": [str(ROOT / "prometheus" / "alerts.yml")],
        "scrape_configs": [{"job_name": "meter", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    url = f"http://127.0.0.1:{prom_port}"
    prom = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--enable-feature=exemplar-storage"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    command = ["meter", "demo", "--requests", str(requests), "--seconds", f"{seconds:g}", "--serve", "--json",
               "--start-after-scrape", "60", "--ledger", ""]
    # the workload starts after Prometheus's first scrape: every counter is first seen before the call that moves
    # it (the budget's two refusals come in the first second; scraped first at 2, increase() read them as 0)
    demo = None
    try:
        _wait_ready(url)
        started = time.time()
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
        demo = subprocess.Popen([sys.executable, "-m", *command, "--metrics-port", str(metrics_port)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert demo.stdout is not None
        summary = _read_json(demo.stdout, seconds + 300)
        ended = time.time() + 1.5 * SCRAPE_S  # the load has just stopped: rates still see its last seconds
        time.sleep(4 * SCRAPE_S)  # the final values scraped, and the rules evaluated on them
        totals = summary["totals"]
        source = PrometheusHTTP(url)
        up = source.query(f"up[{int(ended - started) + 1}s]", ended)  # the samples, at the times they were scraped
        first = min((float(t) for r in up for t, v in r.get("values", []) if v == "1"), default=started)
        # from the demo's first scrape (no empty stretch of its start-up), which $__range (whole seconds) must still
        # reach back to: there every counter is at 0, before the calls that move it (a step of query_range after it,
        # as this took before, left the budget's refusals out of "Calls refused by budget (range)")
        started = first - SCRAPE_S
        subtitle = header(totals, source, started, ended, seconds=seconds, scrape_interval_s=SCRAPE_S)
        panels: dict[str, Any] = {}
        for file, dashboard in boards.all_dashboards().items():
            drawn = render_dashboard(dashboard, source, started, ended, out / file.replace(".json", ".png"),
                                     subtitle=subtitle, scrape_interval_s=SCRAPE_S)
            panels[file] = [asdict(d) for d in drawn]
        manifest = {"command": " ".join(command) + "''", "seconds": seconds, "start": started, "end": ended,
                    "calls": totals["requests"], "cost_usd": totals["cost_usd"], "header": subtitle, "panels": panels}
        (out / "pictures.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest
    finally:
        for proc in (demo, prom):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meter.dashboards.pictures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboards"))
    parser.add_argument("--seconds", type=float, default=120.0, help="the demo's shaped load (default 120)")
    parser.add_argument("--prometheus", default="prometheus", help="the Prometheus binary (default: on PATH)")
    args = parser.parse_args(argv)
    manifest = make(args.out, args.seconds, args.prometheus)
    empty = [f"{f}: {p['title']}" for f, ps in manifest["panels"].items() for p in ps if p["empty"]]
    print(f"wrote {len(manifest['panels'])} pictures to {args.out} from {manifest['calls']} calls"
          + (f"; panels without data: {empty}" if empty else ""))
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
