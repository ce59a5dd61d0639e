"""``meter report``: what the ledger holds, grouped by team, deployment, model, ... and period.

    meter report --ledger meter.sqlite --by team,deployment --period day --since 2026-11-01
    meter report --ledger meter.sqlite --by team --format csv > november.csv      # or json; --plot spend.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from meter.ledger.errors import LedgerError
from meter.ledger.report import PERIODS, TOKENS, UNITS, Row, UnknownKey, report
from meter.textout import money, money_total, say, say_error, spreadsheet_cell, text_table, utc_day


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. team=search)")
    return key.strip(), value


def add_commands(commands: Any) -> None:
    cmd = commands.add_parser("report", help="spend, tokens, errors and latency from a ledger, grouped",
                              description=__doc__.splitlines()[0])
    cmd.add_argument("--ledger", required=True, metavar="FILE|URL",
                     help="the ledger: a SQLite file or a postgresql:// URL (Meter(ledger=...))")
    cmd.add_argument("--by", type=_names, default=(), metavar="KEY[,KEY...]",
                     help="deployment, model, deployment_type, api, outcome, provider, region, or an "
                          "attribution key the ledger's calls carry (team, feature, ...)")
    cmd.add_argument("--where", type=_pair, action="append", default=[], metavar="KEY=VALUE",
                     help="only the calls whose key (as in --by) has that value; repeat to narrow")
    cmd.add_argument("--period", choices=sorted(PERIODS), help="also group by hour, day, week or month (UTC)")
    cmd.add_argument("--since", type=utc_day, help="first UTC day (inclusive)")
    cmd.add_argument("--until", type=utc_day, help="last UTC day (exclusive)")
    cmd.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cmd.add_argument("--as-reported", action="store_true",
                     help="use the cost recorded with each call, not the latest re-pricing")
    cmd.add_argument("--plot", metavar="FILE.png", help="also draw spend per period, stacked by the first --by key "
                                                        "(needs the [plots] extra and --period)")
    cmd.set_defaults(handler=run)

    again = commands.add_parser("reprice", help="price the ledger again with today's tables: a dry run, or --apply",
                                description="Price every call of a ledger again with the built-in tables (and "
                                            "--tables of your own); show what would change by model, deployment "
                                            "type and day; --apply records the new costs and keeps the old.")
    again.add_argument("--ledger", required=True, metavar="FILE|URL")
    again.add_argument("--tables", nargs="+", default=[], metavar="TOML", help="your price tables, over the built-ins")
    again.add_argument("--since", type=utc_day, help="first UTC day (inclusive)")
    again.add_argument("--until", type=utc_day, help="last UTC day (exclusive)")
    again.add_argument("--apply", action="store_true", help="record the new costs (current moves to them)")
    again.set_defaults(handler=run_reprice)

    admin = commands.add_parser("ledger", help="a ledger's contents and schema, and retention")
    sub = admin.add_subparsers(dest="ledger_command", metavar="COMMAND")
    admin.set_defaults(handler=lambda args: (admin.print_help(), 2)[1])
    for name, text in (("info", "what the ledger holds (calls, dates, price versions, size)"),
                       ("migrate", "bring the ledger to this meter's schema (creates it if missing)"),
                       ("prune", "delete the calls started before a UTC day, and their costs")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--ledger", required=True, metavar="FILE|URL")
        if name == "prune":
            cmd.add_argument("--before", type=utc_day, required=True, metavar="DAY")
        cmd.set_defaults(handler=run_admin)


def run_admin(args: argparse.Namespace) -> int:
    from meter.ledger import admin

    try:
        if args.ledger_command == "info":
            print(json.dumps(admin.info(args.ledger), indent=2))  # ASCII: json escapes the rest
        elif args.ledger_command == "migrate":
            say(f"ledger {args.ledger}: schema version {admin.migrate(args.ledger)}, up to date")
        else:
            removed = admin.prune(args.ledger, args.before)
            say(f"ledger {args.ledger}: removed {removed} calls started before {args.before} (and their costs)")
    except LedgerError as exc:
        say_error(exc)
        return 1
    return 0


def run_reprice(args: argparse.Namespace) -> int:
    from meter.ledger.reprice import reprice
    from meter.pricing import PriceBook, PricingFileError

    try:
        book = PriceBook.load(*args.tables)
        result = reprice(args.ledger, book, args.since, args.until, apply=args.apply)
    except (LedgerError, PricingFileError) as exc:
        say_error(exc)
        return 1
    header = ["model", "deployment type", "day", "calls", "before USD", "after USD", "change USD", "newly priced",
              "now unknown"]
    # A call unknown on one side adds nothing to that side's sum: every cell says how many calls it leaves out.
    lines = [[*key, str(c.calls), money_total(c.before, c.newly_priced), money_total(c.after, c.now_unknown),
              money_total(c.difference, c.newly_priced + c.now_unknown), str(c.newly_priced), str(c.now_unknown)]
             for key, c in sorted(result.changes.items())]
    if lines:
        print(text_table(lines, header))
    changes = result.changes.values()
    before = sum((c.before for c in changes), Decimal(0))
    after = sum((c.after for c in changes), Decimal(0))
    newly, gone = sum(c.newly_priced for c in changes), sum(c.now_unknown for c in changes)
    say(f"{result.checked} calls with usage checked against price tables {book.version}: {result.changed} would "
        f"change (USD {money_total(before, newly)} -> {money_total(after, gone)})")
    if args.apply:
        print(f"recorded {result.applied} new costs; the costs reported before are kept (meter report --as-reported)")
    elif result.changed:
        print("dry run: nothing was written; --apply records the new costs")
    return 0


def run(args: argparse.Namespace) -> int:
    by = (*args.by, *((args.period,) if args.period else ()))
    if args.plot and not args.period:
        print("error: --plot needs --period (spend is drawn over time)", file=sys.stderr)
        return 1
    try:
        rows = report(args.ledger, by, args.since, args.until, args.as_reported, dict(args.where))
    except UnknownKey as exc:  # a usage error, as argparse's own: exit 2
        say_error(exc)
        return 2
    except (LedgerError, ValueError) as exc:
        say_error(exc)
        return 1
    if args.format == "json":  # ASCII: json escapes every control and non-ASCII character
        print(json.dumps([row.as_json(by) for row in rows], indent=2))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        header = [*by, "calls", "errors", *TOKENS, *UNITS, "estimated_input_tokens", "estimated_output_tokens",
                  "cost_usd", "estimated_cost_usd", "unpriced", "estimated", "p50_s", "p95_s"]
        writer.writerow(header)
        for row in rows:  # a group value (a team name ...) never starts a spreadsheet formula
            values = row.as_json(by)
            writer.writerow([spreadsheet_cell(values[c]) if c in by else values[c] for c in header])
    else:
        print(_table(rows, by))
    if args.plot:
        from meter.extras import require

        require("plots", "meter report --plot")
        _plot(rows, by, args.plot)
        say(f"wrote {args.plot}", sys.stderr)
    return 0


_MORE_COLUMNS = (("web_search_calls", "web search"), ("file_search_calls", "file search"),
                 ("code_interpreter_sessions", "code interp."), ("audio_seconds", "audio s"),
                 ("speech_characters", "chars"), ("images", "images"))
"""Columns shown only when some group has them: the built-in tool calls and the units."""


def _table(rows: list[Row], by: tuple[str, ...]) -> str:
    more = [(name, title) for name, title in _MORE_COLUMNS
            if any(row.tokens.get(name) or row.units.get(name) for row in rows)]
    header = [*by, "calls", "errors", "input", "cached", "output", "reasoning", *(title for _, title in more),
              "cost USD", "est. USD", "p50 s", "p95 s"]
    lines = [[*row.group, str(row.calls), str(row.errors), str(row.tokens["input_tokens"]),
              str(row.tokens["cached_input_tokens"]), str(row.tokens["output_tokens"]),
              str(row.tokens["reasoning_output_tokens"]),
              *(f"{row.tokens.get(name) or row.units.get(name) or 0:g}" for name, _ in more),
              money_total(row.cost_usd, row.unpriced), money(row.estimated_cost_usd), _seconds(row.p50_s),
              _seconds(row.p95_s)] for row in rows]
    if not lines:
        return "no calls in the ledger for that range"
    return text_table(lines, header)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _period_start(text: str) -> datetime:
    """A report period (``2026-11-01T14:00``, ``2026-11-01``, ``2026-11``) as the UTC time it starts."""
    if len(text) == 7:
        text += "-01"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _plot(rows: list[Row], by: tuple[str, ...], out: str) -> None:
    """Spend per period stacked by the first key, drawn as the dashboard pictures draw (``meter.plotting``)."""
    from meter import plotting

    plt = plotting.pyplot()
    periods = sorted({row.group[-1] for row in rows})
    stacks: dict[str, list[float]] = {}
    for row in rows:
        key = (row.group[0] or "(none)") if len(by) > 1 else "all"
        stacks.setdefault(key, [0.0] * len(periods))[periods.index(row.group[-1])] += float(row.cost_usd)
    times = [_period_start(p) for p in periods]
    figure = plt.figure(figsize=(10, 4.2), dpi=100, facecolor=plotting.BACKGROUND)
    axes = figure.add_axes((0.09, 0.2, 0.88, 0.7))
    title = f"Spend per {by[-1]}" + (f" by {by[0]}" if len(by) > 1 else "") + " (USD, from the ledger)"
    days = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0}.get(by[-1])
    plotting.timeseries(axes, title, [plotting.Series(k, times, v) for k, v in sorted(stacks.items())],
                        "currencyUSD", bars=True, bar_days=days)
    if len(times) == 1 and days:  # one period: show a little of either side, as a dashboard's range would
        axes.set_xlim(times[0] - timedelta(days=days * 3), times[0] + timedelta(days=days * 3))
    figure.savefig(out, dpi=100, facecolor=plotting.BACKGROUND)
    plt.close(figure)
