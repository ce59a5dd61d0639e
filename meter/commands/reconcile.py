"""``meter reconcile``: the ledger against Azure's cost exports, every difference explained where it can be.

    meter reconcile --ledger meter.sqlite costs-2026-11.csv [more files ...] \\
        [--resource my-aoai=/subscriptions/.../accounts/my-aoai] [--since D --until D] \\
        [--format table|csv|json] [--fail-above 2%]

Exit status: 0, or 3 when ``--fail-above`` is crossed (for a monthly CI job), 1 for bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from meter.ledger.errors import LedgerError
from meter.textout import say_error, spreadsheet_cell, text_table, utc_day, visible

EXIT_ABOVE = 3


def _share(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share like 2%") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share like 2%")
    return value / 100


def _resource(text: str) -> tuple[str, str]:
    name, sep, resource_id = text.partition("=")
    if not sep or not name.strip() or not resource_id.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST=RESOURCE_ID "
                                         "(e.g. my-aoai=/subscriptions/.../accounts/my-aoai)")
    return name.strip().lower(), resource_id.strip()


def add_command(commands: Any) -> None:
    cmd = commands.add_parser("reconcile", help="the ledger against Azure cost exports: every difference explained",
                              description=__doc__.splitlines()[0])
    cmd.add_argument("exports", nargs="+", metavar="EXPORT", help="cost-export files (CSV or gzip; EA, MCA, FOCUS)")
    cmd.add_argument("--ledger", required=True, metavar="FILE|URL", help="the ledger (Meter(ledger=...))")
    cmd.add_argument("--resource", type=_resource, action="append", default=[], metavar="HOST=RESOURCE_ID",
                     help="the export resource of calls to HOST (its first label, or the whole host); by default "
                          "my-aoai.openai.azure.com is the resource my-aoai")
    cmd.add_argument("--since", type=utc_day, help="first UTC day (inclusive)")
    cmd.add_argument("--until", type=utc_day, help="last UTC day (exclusive)")
    cmd.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cmd.add_argument("--fail-above", type=_share, metavar="SHARE",
                     help=f"exit {EXIT_ABOVE} when the unexplained difference is above this share of the bill "
                          "(e.g. 2%%)")
    cmd.add_argument("--window", type=int, default=10, metavar="MINUTES",
                     help="calls this close to midnight UTC may be billed on the other day (default 10)")
    cmd.add_argument("--quantity", choices=("auto", "tokens", "blocks"), default="auto",
                     help="read Quantity as tokens or price blocks (default: inferred per file)")
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from meter.reconcile.billed import combine, resource_name
    from meter.reconcile.explain import reconcile
    from meter.reconcile.exports import ExportError, read_file
    from meter.reconcile.metered import read_ledger

    started = time.perf_counter()
    try:
        files = [read_file(path) for path in args.exports]
        if args.quantity != "auto":
            for f in files:
                f.reading, f.reading_reason = args.quantity, "given (--quantity)"
        billed = combine(files, args.since, args.until)
        resources = {host: resource_name(resource_id) for host, resource_id in args.resource}
        metered = read_ledger(args.ledger, resources, timedelta(minutes=args.window), args.since, args.until)
    except (ExportError, LedgerError) as exc:
        say_error(exc)
        return 1
    result = reconcile(billed, metered, timedelta(minutes=args.window))
    rows = sum(f.rows for f in files)
    seconds = time.perf_counter() - started
    if args.format == "json":
        print(json.dumps(as_json(result, files, rows, seconds), indent=2, default=str))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_HEADER)
        for line in result.lines:
            writer.writerow(_csv_row(line))
    else:
        print(as_table(result, files, rows, seconds))
    if args.fail_above is not None and result.unexplained_share > args.fail_above:
        print(f"unexplained difference {result.unexplained_share:.2%} is above --fail-above "
              f"{args.fail_above:.2%}", file=sys.stderr)
        return EXIT_ABOVE
    return 0


CSV_HEADER = ["day", "resource", "model", "token_class", "billed_tokens", "billed_cost_usd", "metered_tokens",
              "metered_cost_usd", "estimated_tokens", "token_difference", "cost_difference_usd", "explanation",
              "unexplained_tokens", "unexplained_cost_usd"]


def _money(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _shown(value: Decimal | None) -> str:
    """Money for people: exact, without the trailing zeros of the arithmetic."""
    return "" if value is None else format(value.normalize(), "f")


def _csv_row(line: Any) -> list[str]:
    return [line.day.isoformat(), str(spreadsheet_cell(line.resource)), str(spreadsheet_cell(line.model)), line.kind,
            format(line.billed_tokens, "f"), _money(line.billed_cost), str(line.metered_tokens),
            _money(line.metered_cost), str(line.estimated_tokens), format(line.token_difference, "f"),
            _money(line.cost_difference), "+".join(line.explanations), format(line.unexplained_tokens, "f"),
            _money(line.unexplained_cost)]


def as_json(result: Any, files: list[Any], rows: int, seconds: float) -> dict[str, Any]:
    return {
        "files": [{"path": f.path, "schema": f.schema, "rows": f.rows, "azure_openai_rows": f.openai_rows,
                   "quantity_read_as": f.reading, "because": f.reading_reason, "currency": f.currency,
                   "cost_column": f.cost_in} for f in files],
        "costs_compared": result.costs_compared, "why_not_costs": result.why_not_costs,
        "lines": [dict(zip(CSV_HEADER, _csv_row(line), strict=True)) for line in result.lines],
        "rollups": [{"resource": r.resource, "month": r.month, "billed_tokens": format(r.billed_tokens, "f"),
                     "billed_cost_usd": format(r.billed_cost, "f"), "metered_tokens": r.metered_tokens,
                     "metered_cost_usd": format(r.metered_cost, "f"),
                     "unexplained_cost_usd": format(r.unexplained_cost, "f")} for r in result.rollups],
        "findings": [{"kind": f.kind, "resource": f.resource, "model": f.model, "token_class": f.token_class,
                      "days": [d.isoformat() for d in f.days], "tokens": format(f.tokens, "f"),
                      "cost_usd": _money(f.cost), "text": f.text, "detail": f.detail} for f in result.findings],
        "billed_total": format(result.billed_total, "f"), "unexplained": format(result.unexplained, "f"),
        "unexplained_share": format(result.unexplained_share, "f"), "rows_read": rows, "seconds": round(seconds, 3),
    }


def as_table(result: Any, files: list[Any], rows: int, seconds: float) -> str:
    """The report people read: every line shown ``visible`` (an export's meter names and currency, a path), and
    the tables' cells by ``text_table``, so that nothing from the data acts on a terminal or adds a line."""
    out = [f"read {rows:,} export rows in {seconds:.2f} s"]
    for f in files:
        out.append(visible(f"  {f.path}: {f.schema}, {f.openai_rows:,} Azure OpenAI rows of {f.rows:,}; Quantity "
                           f"read as {f.reading} ({f.reading_reason}); cost from {f.cost_in or 'no column'}"))
    if not result.costs_compared:
        out.append(visible(f"costs were not compared, only quantities: {result.why_not_costs}"))
    out.append("")
    header = ["day", "resource", "model", "class", "billed tok", "billed USD", "metered tok", "metered USD",
              "diff tok", "explanation"]
    lines = [[line.day.isoformat(), line.resource, line.model, line.kind, f"{line.billed_tokens:,}",
              _shown(line.billed_cost), f"{line.metered_tokens:,}", _shown(line.metered_cost),
              f"{line.token_difference:+,}", "+".join(line.explanations)] for line in result.lines]
    out.append(text_table(lines, header))
    out.append("")
    rollups = [[r.resource, r.month, f"{r.billed_tokens:,}", _shown(r.billed_cost), f"{r.metered_tokens:,}",
                _shown(r.metered_cost), _shown(r.unexplained_cost)] for r in result.rollups]
    out.append(text_table(rollups, ["resource", "month", "billed tok", "billed USD", "metered tok", "metered USD",
                                    "unexplained USD"]))
    out.append("")
    for finding in result.findings:
        where = " ".join(x for x in (finding.resource, finding.model, finding.token_class) if x)
        out.append(visible(f"* {finding.kind}{' [' + where + ']' if where else ''}: {finding.text}"))
        if finding.kind == "price":
            out.append("  to make them agree, a negotiated-price table (meter --tables) would say:")
            out.extend(visible("    " + text) for text in finding.detail["price_entry"].split("\n"))
    unit = "USD" if result.costs_compared else "tokens"
    out.append("")
    out.append(f"unexplained: {_shown(result.unexplained)} {unit} of {_shown(result.billed_total)} {unit} "
               f"billed ({result.unexplained_share:.2%})")
    return "\n".join(out)
