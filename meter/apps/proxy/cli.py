"""``meter proxy``: run the metering reverse proxy in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Any

from meter.apps.proxy.app import DEFAULT_BODY_TIMEOUT
from meter.apps.proxy.headers import DEFAULT_HEAD_TIMEOUT

_OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _seconds(text: str) -> float:
    """A positive number of seconds, for argparse (a zero or negative bound would refuse every request)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``meter proxy`` to the ``meter`` command tree."""
    parser = commands.add_parser(
        "proxy",
        help="run a metering reverse proxy in front of an Azure OpenAI resource",
        description=(
            "Forward every request to UPSTREAM through the metered transport and relay the answers unchanged "
            "(streams chunk by chunk). Prometheus metrics are served on their own port; spans are exported over "
            "OTLP when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Callers' "
            "api-key and Authorization headers go upstream and are never logged."
        ),
    )
    parser.add_argument("--upstream", required=True, metavar="URL",
                        help="the resource to forward to, e.g. https://RESOURCE.openai.azure.com")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9464,
                        help="port serving /metrics; 0 turns it off (default: %(default)s)")
    parser.add_argument("--metrics-addr", default="127.0.0.1", help="address serving /metrics (default: %(default)s)")
    parser.add_argument("--max-concurrency", type=int, default=64,
                        help="requests relayed at once; more wait for a slot (default: %(default)s)")
    parser.add_argument("--queue-timeout", type=float, default=60.0,
                        help="seconds a request waits for a slot before a 503 (default: %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="seconds to connect upstream (default: %(default)s)")
    parser.add_argument("--read-timeout", type=float, default=300.0,
                        help="seconds between upstream bytes before a 504 or a cut stream (default: %(default)s)")
    parser.add_argument("--head-timeout", type=_seconds, default=DEFAULT_HEAD_TIMEOUT, metavar="SECONDS",
                        help="time to receive a whole request head, from when the connection is ready for one; "
                             "then the connection is closed (default: %(default)s)")
    parser.add_argument("--body-timeout", type=_seconds, default=DEFAULT_BODY_TIMEOUT, metavar="SECONDS",
                        help="time to receive a whole request body, then a 408 and the connection closed; no "
                             "concurrency slot is held meanwhile (default: %(default)s)")
    parser.add_argument("--ledger", metavar="FILE", help="keep every call in this SQLite ledger (see docs/ledger.md)")
    parser.add_argument("--budgets", metavar="FILE",
                        help="spend limits (a budgets.toml, docs/budgets.md): a call a hard budget refuses is "
                             "answered 429 (budget_exceeded) by the proxy and never sent upstream")
    parser.add_argument("--deployments", metavar="FILE",
                        help="deployment map for pricing (TOML or JSON; see docs/pricing.md)")
    parser.add_argument("--allowed-host", action="append", default=None, metavar="NAME", dest="allowed_hosts",
                        help="a Host name the proxy answers to besides loopback names, this machine's hostname and "
                             "the address it was dialled at (repeatable; '*' accepts any); others get a 400")
    parser.add_argument("--inject-stream-usage", action="store_true",
                        help="add stream_options.include_usage to streaming chat requests that lack it: exact "
                             "usage, but callers then receive a usage chunk they did not ask for")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    from meter.extras import require

    require("proxy", "meter proxy")
    import uvicorn

    import meter
    from meter.apps.proxy.app import ProxyApp, upstream_base
    from meter.apps.proxy.server import uvicorn_config
    from meter.budgets import BudgetFileError
    from meter.ledger import LedgerError
    from meter.pricing import PricingFileError

    try:
        host = upstream_base(args.upstream).host
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    otel = any(os.environ.get(name) for name in _OTLP_VARIABLES)
    if otel:
        meter.setup_otel(service_name="meter-proxy")
    try:
        m = meter.Meter(hosts=[host], deployments=args.deployments, otel=otel,
                        inject_stream_usage=args.inject_stream_usage, ledger=args.ledger, budgets=args.budgets)
    except (LedgerError, PricingFileError, BudgetFileError) as exc:
        # A configuration mistake (the ledger, --deployments or $METER_DEPLOYMENTS, a price table, --budgets): the
        # message names the file, the entry and the field; a traceback would only bury it.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = ProxyApp(args.upstream, m, max_concurrency=args.max_concurrency, connect_timeout=args.connect_timeout,
                   read_timeout=args.read_timeout, queue_timeout=args.queue_timeout,
                   body_timeout=args.body_timeout, allowed_hosts=args.allowed_hosts)
    if args.metrics_port:
        meter.start_metrics_server(args.metrics_port, addr=args.metrics_addr)
        print(f"meter proxy: metrics on http://{args.metrics_addr}:{args.metrics_port}/metrics", file=sys.stderr)
    print(f"meter proxy: http://{args.host}:{args.port} -> {app.upstream}", file=sys.stderr)
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal: here that is the normal end
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uvicorn_config(app, args.head_timeout, host=args.host, port=args.port,
                                      log_level="info")).run()
    m.close()  # the ledger gets what is queued
    return 0
