"""The ``meter demo`` command: wiring of emulator, meter, metrics server, workload and report."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

import meter
from meter import names
from meter.budgets import BudgetFileError
from meter.budgets.show import status_json, status_lines
from meter.costing import region_key
from meter.extras import require
from meter.ledger import LedgerError
from meter.pricing import DeploymentInfo

DEFAULT_METRICS_PORT = 9464
LEDGER_PREFIX = "meter-demo-"


def run_ledger(folder: str | None = None) -> Path:
    """A ledger of this run's own in the temporary folder: ``meter-demo-20261207-141503-4242.sqlite``.

    One shared file would grow across runs, and the report command the demo prints would then show
    more calls and cost than the demo's own table. The time says which run wrote it; the process id
    and a counter keep two runs in the same second apart."""
    base = Path(folder or tempfile.gettempdir()) / f"{LEDGER_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path, n = base.with_suffix(".sqlite"), 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.sqlite"
    return path


def demo_budgets(label_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The demo's own budgets: ``ads-daily`` (soft, small enough that the ads team's calls in a default run cross
    its 50% and 80% alerts, and a longer run its 100%) and ``sandbox-hard`` (hard: of the workload's three calls
    tagged ``feature=sandbox``, it lets the first through and refuses the other two)."""
    team = {label_keys[0]: "ads"} if label_keys else {}
    return [
        {"name": "ads-daily", "match": team, "period": "day", "limit_usd": "0.025",
         "alert_at": ["50%", "80%", "100%"]},
        {"name": "sandbox-hard", "match": {"feature": "sandbox"}, "period": "day", "limit_usd": "0.0002",
         "enforce": "hard"},
    ]


def _label_keys(text: str) -> tuple[str, ...]:
    """``team,feature`` -> ``("team", "feature")``; an empty text: no attribution labels."""
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    for key in keys:
        if not key.isidentifier():
            raise argparse.ArgumentTypeError(f"{key!r} is not a label name (letters, digits and _)")
    return keys


def _plants(text: str) -> tuple[str, ...]:
    from meter.reconcile.simulate import PLANTS

    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    for kind in kinds:
        if kind not in (*PLANTS, "unmetered"):
            raise argparse.ArgumentTypeError(f"{kind!r} is not one of unmetered, {', '.join(PLANTS)}")
    return kinds


def add_command(commands: Any) -> None:
    """Register ``meter demo`` on the ``meter`` command's sub-parsers."""
    parser = commands.add_parser(
        "demo", help="run a metered workload against an embedded Azure OpenAI emulator",
        description="Start an Azure OpenAI emulator on a loopback port, serve Prometheus metrics, drive a mixed "
                    "workload through the openai SDK wrapped by meter, and print what meter measured.")
    parser.add_argument("--requests", type=int, default=40, help="calls in the workload (default 40)")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight at once (default 4)")
    parser.add_argument("--seconds", type=float, default=0.0,
                        help="after the workload, keep generating load for this long, in phases (steady, a burst, "
                             "a 429 storm, streams closed early: fills a dashboard with shapes)")
    parser.add_argument("--serve", action="store_true", help="keep /metrics (and the emulator) up until Ctrl-C")
    parser.add_argument("--start-after-scrape", type=float, default=0.0, metavar="SECONDS",
                        help="start the workload once /metrics has been scraped (waiting at most SECONDS), so a "
                             "scraper's first sample comes before the first call and increase() counts every "
                             "call, the budget's refusals included (default 0: start at once)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary instead of a table")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help=f"Prometheus port on 127.0.0.1 (default {DEFAULT_METRICS_PORT}, or a free one if "
                             f"{DEFAULT_METRICS_PORT} is in use; 0 picks a free one)")
    parser.add_argument("--metrics-addr", default="127.0.0.1", help="address for /metrics (default 127.0.0.1)")
    parser.add_argument("--ledger", default=None, metavar="FILE",
                        help="the ledger the calls are kept in, a SQLite file or a postgresql:// URL (default: a new "
                             f"{LEDGER_PREFIX}TIME-PID.sqlite in {tempfile.gettempdir()} each run, so its report "
                             "shows this run's calls; '' for none)")
    parser.add_argument("--export-costs", metavar="FILE.csv",
                        help="also write a SIMULATED Azure cost export (EA cost details) of this run, to try "
                             "meter reconcile on")
    parser.add_argument("--plant", type=_plants, default=(), metavar="KIND[,KIND...]",
                        help="differences for meter reconcile to find: unmetered (3 calls not wrapped by meter), "
                             "discount (gpt-5 billed 15%% below list), unknown-meter, ptu")
    parser.add_argument("--namespace", default=names.DEFAULT_NAMESPACE,
                        help="prefix of the Prometheus metric names, as Meter(namespace=...) (default %(default)s)")
    parser.add_argument("--label-keys", type=_label_keys, default=("team",), metavar="KEY[,KEY...]",
                        help="attribution labels, as Meter(label_keys=...): the first carries the workload's "
                             "teams, further ones the kind of call (default team)")
    parser.add_argument("--budgets", default=None, metavar="FILE",
                        help="spend limits for the run, a budgets.toml (default: the demo's own: a soft daily "
                             "budget for the ads team that crosses its alerts, a hard one that refuses "
                             "calls; '' for none)")
    parser.set_defaults(handler=run_demo)


class Progress:
    """A one-line progress bar on a terminal; silent when stderr is not one (logs, CI)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._live = sys.stderr.isatty()

    def step(self, step: Any = None) -> None:
        """One step of the workload done: as many calls as it makes (``Step.calls``)."""
        with self._lock:
            self.done += getattr(step, "calls", 1)
            if self._live:
                width = 30
                filled = int(width * min(self.done, self.total) / max(1, self.total))
                sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} calls")
                sys.stderr.flush()

    def finish(self) -> None:
        if self._live:
            sys.stderr.write("\n")


def _tracing() -> tuple[Any, Any, str]:
    """OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise spans are kept in memory for a summary."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        tracer_provider, meter_provider = meter.setup_otel(service_name="meter-demo", set_global=False)
        return tracer_provider, meter_provider, "otlp"
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer_provider.memory = exporter  # type: ignore[attr-defined]
    return tracer_provider, None, "memory"


def _span_summary(tracer_provider: Any) -> str:
    spans = tracer_provider.memory.get_finished_spans()
    by_name = Counter(s.name for s in spans)
    errors = sum(1 for s in spans if not s.status.is_ok)
    top = ", ".join(f"{n} x {name}" for name, n in by_name.most_common(6))
    return (f"{len(spans)} spans ({errors} with status ERROR): {top}\n"
            "  set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 to send them to Jaeger or any OTLP backend")


def run_demo(args: argparse.Namespace) -> int:
    """Run the whole demo; returns the exit code."""
    require("demo", "meter demo")
    from meter.apps.demo.report import Summary
    from meter.apps.demo.workload import ONCE, Clients, plan, run, run_for
    from meter.apps.emulator import Emulator, EmulatorConfig

    registry = CollectorRegistry()
    tracer_provider, meter_provider, tracing = _tracing()
    records: list[meter.CallRecord] = []
    records_lock = threading.Lock()

    def keep(record: meter.CallRecord) -> None:
        with records_lock:
            records.append(record)

    if args.ledger is None:
        args.ledger = str(run_ledger())
    config = EmulatorConfig(latency_s=0.005, ttft_s=0.02, tokens_per_s=800)
    with Emulator(config) as emulator:
        deployments = {d.name: DeploymentInfo(d.model, d.deployment_type, region_key(d.region))
                       for d in config.deployments}
        try:  # first: a port that cannot be served leaves no ledger behind
            server = _metrics_server(args.metrics_port, args.metrics_addr, registry, quiet=args.json)
        except OSError as exc:
            port = DEFAULT_METRICS_PORT if args.metrics_port is None else args.metrics_port
            hint = ("pass --metrics-port 0 for a free port" if exc.errno == errno.EADDRINUSE
                    else "pass --metrics-addr with an address of this machine (default 127.0.0.1)")
            print(f"error: cannot serve /metrics on {args.metrics_addr}:{port} ({exc.strerror or exc}); {hint}",
                  file=sys.stderr)
            return 2
        try:
            m = meter.Meter(on_record=keep, registry=registry, tracer_provider=tracer_provider,
                            meter_provider=meter_provider, deployments=deployments, namespace=args.namespace,
                            label_keys=args.label_keys, ledger=args.ledger or None,
                            budgets=demo_budgets(args.label_keys) if args.budgets is None else args.budgets or None)
        except BudgetFileError as exc:
            server.shutdown()
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except LedgerError as exc:
            server.shutdown()
            print(f"error: {exc} (pass --ledger FILE for another, or --ledger '' for none)", file=sys.stderr)
            return 2
        metrics_url = f"http://{args.metrics_addr}:{server.server_port}/metrics"
        if args.start_after_scrape > 0:
            _first_scrape(registry, args.start_after_scrape)
        started = time.monotonic()
        steps = plan(args.requests)
        progress = Progress(sum(step.calls for step in steps))
        if not args.json:
            print(f"meter demo: emulator at {emulator.url}, metrics at {metrics_url}")
            print(f"  {progress.total} calls through the openai SDK (concurrency {args.concurrency})")
        clients = Clients(emulator, m)
        try:
            once = [s for s in steps if s in ONCE]  # one at a time: the 429 must hit its own call
            run(clients, once, 1, progress.step, args.label_keys)
            run(clients, [s for s in steps if s not in ONCE], args.concurrency, progress.step, args.label_keys)
            if args.seconds > 0:
                progress.total += int(args.seconds * 10)
                run_for(clients, args.seconds, args.concurrency, progress.step, args.label_keys)
            if "unmetered" in args.plant:
                unmetered_calls(emulator)
        finally:
            progress.finish()
            clients.close()
        m.flush()  # every call's record, span and metrics are out of the metering thread
        tracer_provider.force_flush()
        m.close()  # the ledger has every record before the summary names it
        elapsed = time.monotonic() - started
        if args.export_costs:
            from meter.reconcile.simulate import RESOURCE_ID, write_export

            write_export(args.export_costs, emulator.usage_log, {d.name: d for d in config.deployments},
                         [p for p in args.plant if p != "unmetered"])
        summary = Summary.of(list(records), args.label_keys[0] if args.label_keys else None)
        budgets = m.budgets.store.status() if m.budgets is not None else []
        refused = m.budgets.refused() if m.budgets is not None else {}
        if args.json:
            print(json.dumps({**summary.as_json(), "budgets": [status_json(s, refused.get(s.name, 0)) for s in budgets],
                              "calls": progress.done, "metrics_url": metrics_url,
                              "emulator_url": emulator.url, "ledger": args.ledger or None,
                              "seconds": round(elapsed, 3)}, indent=2), flush=True)
        else:
            print(summary.table())
            if budgets:
                print("budgets (this run's own view, as /metrics shows it):")
                print("\n".join(status_lines(budgets, refused)))
            print(f"\n{records_line(records, progress.done, elapsed)}. Where to look next:")
            if args.serve:
                print(f"  metrics: curl {metrics_url}   (Prometheus text; OpenMetrics with exemplars on request)")
            else:
                print(f"  metrics: {metrics_url} was served while the demo ran, and is stopped now; add --serve to "
                      "keep it up for curl and Prometheus")
            if tracing == "otlp":
                print(f"  traces:  exported over OTLP to {os.environ.get('OTEL_EXPORTER_OTLP_ENDPOINT')}")
            else:
                print("  traces:  " + _span_summary(tracer_provider))
            for line in dashboard_hints(args.namespace, args.label_keys):
                print(line)
            if args.ledger:
                by = ",".join([*args.label_keys[:1], "deployment"])
                print(f"  ledger:  meter report --ledger {args.ledger} --by {by} --period day   (this run's calls)")
                print(f"           meter report --ledger {args.ledger} --by service_tier,deployment_type   (the tiers "
                      "and types its calls were priced at: Priority, Flex, Batch)")
            if args.export_costs:
                print(f"  bill:    wrote a SIMULATED Azure cost export of this run to {args.export_costs}; compare:")
                print(f"           meter reconcile --ledger {args.ledger or 'LEDGER'} {args.export_costs} "
                      f"--resource 127.0.0.1={RESOURCE_ID}")
        if args.serve:
            stop = _stop_on_signal()  # before the line that says so: a Ctrl-C right after it is a clean stop
            if not args.json:
                print(f"\nserving {metrics_url} until Ctrl-C", flush=True)
            while not stop.wait(0.5):
                pass
        server.shutdown()
    return 0


class _Scraped:
    """A collector with no metrics of its own: told when the registry is collected, that is scraped."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.event.set()
        return iter(())


def _first_scrape(registry: CollectorRegistry, timeout: float) -> bool:
    """Wait until ``registry`` has been scraped once (at most ``timeout`` s). The Meter's families are registered
    before this collector, so that scrape already holds every series a call will move: a counter a scraper first
    saw at 0 counts the calls that follow in ``increase()`` (one first seen at 2, after the demo refused two calls
    before any scrape, reads 0)."""
    scraped = _Scraped()
    registry.register(scraped)
    try:
        return scraped.event.wait(timeout)
    finally:
        registry.unregister(scraped)


def records_line(records: list[meter.CallRecord], calls: int, seconds: float) -> str:
    """``41 records for 40 calls in 1.8 s (...)``: why the table counts more records than the workload made calls.

    meter keeps one record per HTTP attempt, and the openai SDK retries some answers (the demo's 429)
    itself: each attempt before the last one of a call is a record more. The statuses come from
    the records (the attempts of one call share a ``correlation_id``)."""
    head = f"{len(records)} records for {calls} calls in {seconds:.1f} s"
    if len(records) == calls:
        return head
    last: dict[str, int] = {}
    for record in records:
        if record.correlation_id is not None:
            last[record.correlation_id] = max(last.get(record.correlation_id, 0), record.attempt or 0)
    retried = Counter(str(r.status_code or r.outcome) for r in records
                      if r.correlation_id is not None and (r.attempt or 0) < last[r.correlation_id])
    n = sum(retried.values())
    if not n:
        return f"{head} (meter keeps a record per HTTP attempt)"
    answers = ", ".join(f"{k} x {status}" if k > 1 else f"a {status}" for status, k in sorted(retried.items()))
    return (f"{head} (the openai SDK retried {n} {'answer' if n == 1 else 'answers'}, {answers}, and meter keeps "
            "a record per HTTP attempt)")


def _metrics_server(port: int | None, addr: str, registry: CollectorRegistry, quiet: bool) -> Any:
    """``/metrics`` on ``port``; with no port given, on 9464 or, when that is taken, on a free port (said on stderr).

    The default must not fail on a machine where something already serves 9464 (another demo, a
    Prometheus exporter): the demo is the first command a user runs. A port the user chose is theirs:
    if it is taken, that is an error (``OSError``), not a silent move.
    """
    if port is not None:
        return meter.start_metrics_server(port, addr=addr, registry=registry)[0]
    try:
        return meter.start_metrics_server(DEFAULT_METRICS_PORT, addr=addr, registry=registry)[0]
    except OSError:
        server = meter.start_metrics_server(0, addr=addr, registry=registry)[0]
        if not quiet:
            print(f"meter demo: port {DEFAULT_METRICS_PORT} is in use; serving /metrics on port {server.server_port} "
                  "instead", file=sys.stderr)
        return server


def unmetered_calls(emulator: Any, calls: int = 3) -> None:
    """Calls straight to the emulator with a plain openai client (no meter): billed, never metered."""
    import openai

    from meter.apps.demo.workload import API_VERSION

    client = openai.AzureOpenAI(azure_endpoint=emulator.url, api_key=emulator.config.api_key,
                                api_version=API_VERSION, max_retries=0)
    try:
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "unwrapped"}],
                                           max_tokens=20)
    finally:
        client.close()


def dashboard_hints(namespace: str, label_keys: tuple[str, ...]) -> list[str]:
    """Commands that work from the installed package (no source tree) to see these metrics in Grafana."""
    options = ""
    if namespace != names.DEFAULT_NAMESPACE:
        options += f" --namespace {namespace}"
    if label_keys != ("team",):
        options += f" --label-keys {','.join(label_keys) or chr(39) * 2}"
    return [
        f"  dashboards: meter dashboards export ./meter-dashboards{options}",
        "              (Grafana dashboards, alert rules with promtool tests, prometheus.yml, compose.yaml), then",
        "              cd meter-dashboards && docker compose up   (Prometheus, Grafana :3000, Jaeger :16686)",
        f"              and run this demo with --serve --metrics-addr 0.0.0.0{options}",
        "              without Docker: prometheus --config.file=meter-dashboards/prometheus/prometheus-local.yml",
    ]


def _stop_on_signal() -> threading.Event:
    """An event SIGINT (Ctrl-C) and SIGTERM set, instead of stopping the process where it stands."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
