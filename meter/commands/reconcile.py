"""``meter reconcile``: the ledger against Azure's cost exports, every difference explained where it can be.

    meter reconcile --ledger meter.sqlite costs-2026-11.csv [more files or folders ...] \\
        [--resource my-aoai=/subscriptions/.../accounts/my-aoai] [--since D --until D] \\
        [--format table|csv|json] [--fail-above 2%] [--min-coverage 98%] [--write-prices FILE]

Exit status: 0; 3 when the gate fails (``--fail-above``: the unexplained share, and unless
``--min-coverage`` says otherwise each resource's coverage of at least 100% minus it); 4 when no
resource of the ledger matches one of the export (nothing was compared); 1 for bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from meter.ledger.errors import LedgerError
from meter.textout import money, say, say_error, spreadsheet_cell, text_table, utc_day, visible

EXIT_ABOVE = 3
EXIT_NO_MATCH = 4
EXPORT_SUFFIXES = (".csv", ".csv.gz", ".gz")


def _share(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share like 2%") from None
    if not value.is_finite() or value < 0 or value > 100:
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
    cmd.add_argument("exports", nargs="+", metavar="EXPORT",
                     help="cost-export files (CSV or gzip; EA, MCA, FOCUS), or folders of them")
    cmd.add_argument("--ledger", required=True, metavar="FILE|URL", help="the ledger (Meter(ledger=...))")
    cmd.add_argument("--resource", type=_resource, action="append", default=[], metavar="HOST=RESOURCE_ID",
                     help="the export resource of calls to HOST (its first label, or the whole host); by default "
                          "my-aoai.openai.azure.com is the resource my-aoai")
    cmd.add_argument("--since", type=utc_day, help="first UTC day (inclusive)")
    cmd.add_argument("--until", type=utc_day, help="last UTC day (exclusive)")
    cmd.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cmd.add_argument("--fail-above", type=_share, metavar="SHARE",
                     help=f"exit {EXIT_ABOVE} when the unexplained difference is above this share of the bill "
                          "(e.g. 2%%), or a resource's billed cost is less than 100%% minus it metered")
    cmd.add_argument("--min-coverage", type=_share, metavar="SHARE",
                     help=f"exit {EXIT_ABOVE} when a resource's metered share of its billed cost (per month) is "
                          "below this (e.g. 98%%; 0%% for a resource other apps share); default: 100%% minus "
                          "--fail-above")
    cmd.add_argument("--write-prices", metavar="FILE",
                     help="write the prices the export billed differently as a complete price table, for "
                          "meter reprice --tables FILE")
    cmd.add_argument("--window", type=int, default=10, metavar="MINUTES",
                     help="calls this close to midnight UTC may be billed on the other day (default 10)")
    cmd.add_argument("--quantity", choices=("auto", "tokens", "blocks"), default="auto",
                     help="read Quantity as tokens or price blocks (default: inferred per file)")
    cmd.set_defaults(handler=run)


def _export_paths(given: list[str]) -> list[str]:
    """The files given, a folder standing for the export files under it (``.csv``, ``.csv.gz``, ``.gz``)."""
    from meter.reconcile.exports import ExportError

    out: list[str] = []
    for name in given:
        path = Path(name)
        if not path.is_dir():
            out.append(name)
            continue
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(EXPORT_SUFFIXES))
        if not found:
            raise ExportError(name, 0, "", "is a folder with no export files (.csv, .csv.gz) in it")
        out.extend(found)
    return out


def run(args: argparse.Namespace) -> int:
    from meter.reconcile.billed import combine, resource_name
    from meter.reconcile.explain import reconcile, unmatched
    from meter.reconcile.exports import ExportError, read_file
    from meter.reconcile.metered import read_ledger

    started = time.perf_counter()
    try:
        files = [read_file(path) for path in _export_paths(args.exports)]
        if args.quantity != "auto":
            for f in files:
                f.reading, f.reading_reason = args.quantity, "given (--quantity)"
        billed = combine(files, args.since, args.until)
        resources = {host: resource_name(resource_id) for host, resource_id in args.resource}
        metered = read_ledger(args.ledger, resources, timedelta(minutes=args.window), args.since, args.until,
                              billed.split)
    except (ExportError, LedgerError) as exc:
        say_error(exc)
        return 1
    nothing = unmatched(billed, metered)
    if nothing is not None:
        text = nothing.text()
        say(f"error: {text[0]}", sys.stderr)
        for more in text[1:]:
            say(more, sys.stderr)
        return EXIT_NO_MATCH
    result = reconcile(billed, metered, timedelta(minutes=args.window))
    rows = sum(f.rows for f in files)
    seconds = time.perf_counter() - started
    failures = gate(result, args.fail_above, args.min_coverage)
    if args.format == "json":
        print(json.dumps(as_json(result, files, rows, seconds), indent=2, default=str))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_HEADER)
        for line in result.lines:
            writer.writerow(_csv_row(line))
    else:
        print(as_table(result, files, rows, seconds))
    if args.write_prices:
        status = write_prices(args.write_prices, result, [f.path for f in files])
        if status:
            return status
    for failure in failures:
        say(failure, sys.stderr)
    return EXIT_ABOVE if failures else 0


def gate(result: Any, fail_above: Decimal | None, min_coverage: Decimal | None) -> list[str]:
    """Why the CI gate fails, one line each (none: it passes). ``--fail-above`` holds the unexplained share, and
    unless ``--min-coverage`` is given, each resource's coverage to 100% minus it: unmetered traffic fails it too."""
    out = []
    if fail_above is not None:
        if result.unexplained_share > fail_above:
            out.append(f"unexplained difference {result.unexplained_share:.2%} is above --fail-above "
                       f"{fail_above:.2%}")
        if result.unexplained_unpriced:
            out.append(f"{result.unexplained_unpriced} unexplained amount(s) have no price: they cannot be held to "
                       f"--fail-above {fail_above:.2%}")
    threshold, flag = min_coverage, f"--min-coverage {min_coverage or 0:.2%}"
    if threshold is None and fail_above is not None:
        threshold, flag = 1 - fail_above, f"100% minus --fail-above {fail_above:.2%} (set --min-coverage apart)"
    if threshold is not None:
        for r in result.rollups:
            coverage = r.coverage
            if coverage is not None and coverage < threshold:
                weighed = "cost" if r.by_cost and not r.billed_cost.unpriced and not r.unmetered_cost.unpriced \
                    else "tokens"
                out.append(f"coverage of {r.resource} in {r.month}: {coverage:.2%} of its billed {weighed} metered "
                           f"({1 - coverage:.2%} unmetered), below {threshold:.2%}: {flag}")
    return out


def write_prices(path: str, result: Any, exports: list[str]) -> int:
    """Write the price table of the price findings to ``path``, checked by loading it on the built-ins."""
    from meter.pricing import PriceBook
    from meter.pricing.errors import PricingFileError
    from meter.reconcile.prices import price_table

    text, entries, notes = price_table(result.findings, exports, datetime.now(UTC).date())
    if not entries:
        say(f"no price differs from meter's tables: {path} not written", sys.stderr)
        return 0
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        say(f"error: {path}: cannot be written ({exc.strerror or exc})", sys.stderr)
        return 1
    try:
        PriceBook.load(path)
    except PricingFileError as exc:
        say_error(exc)
        return 1
    for note in notes:
        say(f"note: {note}", sys.stderr)
    say(f"wrote {entries} price entr{'y' if entries == 1 else 'ies'} to {path}: check it with meter pricing "
        f"validate {path}, use it with meter reprice --ledger LEDGER --tables {path}", sys.stderr)
    return 0


CSV_HEADER = ["day", "resource", "model", "token_class", "unit", "billed_tokens", "billed_cost_usd", "metered_tokens",
              "metered_cost_usd", "estimated_tokens", "token_difference", "cost_difference_usd", "explanation",
              "unexplained_tokens", "unexplained_cost_usd", "unmetered_tokens", "unmetered_cost_usd"]


def _money(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")


def _csv_row(line: Any) -> list[str]:
    return [line.day.isoformat(), str(spreadsheet_cell(line.resource)), str(spreadsheet_cell(line.model)), line.kind,
            line.unit, format(line.billed_tokens, "f"), _money(line.billed_cost), format(line.metered_tokens, "f"),
            _money(line.metered_cost), str(line.estimated_tokens), format(line.token_difference, "f"),
            _money(line.cost_difference), "+".join(line.explanations), format(line.unexplained_tokens, "f"),
            _money(line.unexplained_cost), format(line.unmetered_tokens, "f"), _money(line.unmetered_cost)]


def _amount_json(amount: Any) -> dict[str, Any]:
    return {"usd": format(amount.value, "f"), "unpriced": amount.unpriced}


def as_json(result: Any, files: list[Any], rows: int, seconds: float) -> dict[str, Any]:
    t = result.totals
    return {
        "files": [{"path": f.path, "schema": f.schema, "rows": f.rows, "azure_openai_rows": f.openai_rows,
                   "other_service_rows": f.other_rows, "quantity_read_as": f.reading, "because": f.reading_reason,
                   "currency": f.currency, "cost_column": f.cost_in} for f in files],
        "costs_compared": result.costs_compared, "why_not_costs": result.why_not_costs,
        "lines": [dict(zip(CSV_HEADER, _csv_row(line), strict=True)) for line in result.lines],
        "rollups": [{"resource": r.resource, "month": r.month, "billed_tokens": format(r.billed_tokens, "f"),
                     "billed_cost_usd": format(r.billed_cost.value, "f"), "billed_unpriced": r.billed_cost.unpriced,
                     "metered_tokens": format(r.metered_tokens, "f"),
                     "metered_cost_usd": format(r.metered_cost.value, "f"),
                     "metered_unpriced": r.metered_cost.unpriced, "unmetered_tokens": format(r.unmetered_tokens, "f"),
                     "unmetered_cost_usd": format(r.unmetered_cost.value, "f"),
                     "coverage": None if r.coverage is None else format(r.coverage, "f"),
                     "unexplained_cost_usd": format(r.unexplained_cost.value, "f"),
                     "unexplained_unpriced": r.unexplained_cost.unpriced} for r in result.rollups],
        "unknown_meters": [{"meter": u.meter, "reason": u.reason, "resources": sorted(u.resources), "rows": u.rows,
                            "quantity": format(u.quantity, "f"), "cost": _money(u.cost), "first_at": u.where}
                           for u in result.unknown],
        "commitments": [{"day": c.day.isoformat(), "resource": c.resource, "meter": c.meter,
                         "pricing_model": c.pricing_model, "quantity": format(c.quantity, "f"), "unit": c.unit,
                         "cost": _money(c.cost), "currency": c.currency} for c in result.commitments],
        "other_services": [{"resource": o.resource, "service": o.service, "meter": o.meter, "rows": o.rows,
                            "quantity": format(o.quantity, "f"), "unit": o.unit, "cost": _money(o.cost),
                            "currency": o.currency} for o in result.others],
        "findings": [{"kind": f.kind, "resource": f.resource, "model": f.model, "token_class": f.token_class,
                      "days": [d.isoformat() for d in f.days], "tokens": format(f.tokens, "f"),
                      "cost_usd": _money(f.cost), "text": f.text, "detail": f.detail} for f in result.findings],
        "totals": {"lines_billed": _amount_json(t.billed), "lines_metered": _amount_json(t.metered),
                   "lines_unmetered": _amount_json(t.unmetered), "lines_unexplained": _amount_json(t.unexplained),
                   "unknown_meters": _amount_json(t.unknown),
                   "commitments": {currency: {"cost": format(a.value, "f"), "unpriced": a.unpriced}
                                   for currency, a in sorted(t.commitments.items())},
                   "commitment_quantities": {unit: format(q, "f")
                                             for unit, q in sorted(t.commitment_quantities.items())},
                   "other_services": {currency: {"cost": format(a.value, "f"), "unpriced": a.unpriced}
                                      for currency, a in sorted(t.others.items())}},
        "billed_total": format(result.billed_total, "f"), "unexplained": format(result.unexplained, "f"),
        "unexplained_unpriced": result.unexplained_unpriced,
        "unexplained_share": format(result.unexplained_share, "f"), "rows_read": rows, "seconds": round(seconds, 3),
    }


def _amount(amount: Any) -> str:
    """A total for people: what is priced, and how many parts are not (never a 0 for unknown)."""
    if not amount.unpriced:
        return money(amount.value)
    return f"{money(amount.value)} + {amount.unpriced} unpriced" if amount.value else f"{amount.unpriced} unpriced"


def _cost(value: Decimal | None) -> str:
    return "unpriced" if value is None else money(value)


def _coverage(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _by_currency(amounts: dict[str, Any]) -> str:
    return " + ".join(f"{_amount(a)} {currency}" for currency, a in sorted(amounts.items())) or "0"


def as_table(result: Any, files: list[Any], rows: int, seconds: float) -> str:
    """The report people read: every line shown ``visible`` (an export's meter names and currency, a path), and
    the tables' cells by ``text_table``, so that nothing from the data acts on a terminal or adds a line.

    Every total printed is the sum of the rows above it: the lines' total row, the roll-up's (the same sums
    per resource and month), the unknown meters', the commitments' and the other services'; the closing lines
    add them up in words."""
    t = result.totals
    usd = result.costs_compared
    out = [f"read {rows:,} export rows in {seconds:.2f} s"]
    for f in files:
        others = f", {f.other_rows:,} of other Cognitive Services" if f.other_rows else ""
        out.append(visible(f"  {f.path}: {f.schema}, {f.openai_rows:,} Azure OpenAI rows{others} of {f.rows:,}; "
                           f"Quantity read as {f.reading} ({f.reading_reason}); cost from "
                           f"{f.cost_in or 'no column'}"))
    if not usd:
        out.append(visible(f"costs were not compared, only quantities: {result.why_not_costs}"))
    out.append("")
    header = ["day", "resource", "model", "class", "unit", "billed qty", *(["billed USD"] if usd else []),
              "metered qty", *(["metered USD"] if usd else []), "diff qty", "explanation"]
    table = []
    for line in result.lines:
        table.append([line.day.isoformat(), line.resource, line.model, line.kind, line.unit, f"{line.billed_tokens:,}",
                      *([_cost(line.billed_cost)] if usd else []), f"{line.metered_tokens:,}",
                      *([_cost(line.metered_cost)] if usd else []), f"{line.token_difference:+,}",
                      "+".join(line.explanations)])
    billed_q, metered_q = _per_unit(result.lines, "billed_tokens"), _per_unit(result.lines, "metered_tokens")
    units = list(dict.fromkeys([*billed_q, *metered_q]))
    diff = {u: billed_q.get(u, Decimal(0)) - metered_q.get(u, Decimal(0)) for u in units}
    table.append(["total", "", "", "", units[0] if len(units) == 1 else "", _in_units(billed_q, units),
                  *([_amount(t.billed)] if usd else []), _in_units(metered_q, units),
                  *([_amount(t.metered)] if usd else []), _in_units(diff, units, sign=True), ""])
    out.append(text_table(table, header))
    out.append("")
    out.append(_rollup_table(result))
    if result.unknown:
        out.append("")
        out.append("unknown meters: Azure OpenAI rows whose meter name meter cannot read; not compared, their cost "
                   "is unexplained")
        rows_u = [[u.meter, ", ".join(sorted(u.resources)), str(u.rows), f"{u.quantity:,}",
                   *([_cost(u.cost)] if usd else []), u.where] for u in result.unknown]
        rows_u.append(["total", "", str(sum(u.rows for u in result.unknown)), "", *([_amount(t.unknown)] if usd
                                                                                    else []), ""])
        out.append(text_table(rows_u, ["meter", "resource", "rows", "quantity", *(["billed USD"] if usd else []),
                                       "first at"]))
    if result.commitments:
        out.append("")
        out.append("commitments: provisioned throughput (PTU) and reservations, billed per hour or month, never "
                   "per token")
        rows_c = [[c.day.isoformat(), c.resource, c.meter, c.pricing_model, f"{c.quantity:,}", c.unit,
                   f"{_cost(c.cost)} {c.currency}"] for c in result.commitments]
        rows_c.append(["total", "", "", "", _quantities(t.commitment_quantities), "", _by_currency(t.commitments)])
        out.append(text_table(rows_c, ["day", "resource", "meter", "pricing", "quantity", "unit", "billed"]))
    if result.others:
        out.append("")
        out.append("other services: Cognitive Services rows on these resources that are not Azure OpenAI "
                   "(Language, Speech, Vision), outside the Azure OpenAI totals")
        rows_o = [[o.resource, o.service, o.meter, str(o.rows), f"{o.quantity:,}", o.unit,
                   f"{_cost(o.cost)} {o.currency}"] for o in result.others]
        rows_o.append(["total", "", "", str(sum(o.rows for o in result.others)), "", "", _by_currency(t.others)])
        out.append(text_table(rows_o, ["resource", "service", "meter", "rows", "quantity", "unit", "billed"]))
    out.append("")
    for finding in result.findings:
        where = " ".join(x for x in (finding.resource, finding.model, finding.token_class) if x)
        out.append(visible(f"* {finding.kind}{' [' + where + ']' if where else ''}: {finding.text}"))
        if finding.kind == "price":
            out.append("  to make them agree, a price table of your own would hold this entry (--write-prices FILE "
                       "writes the whole table, for meter reprice --tables FILE):")
            out.extend(visible("    " + text) for text in finding.detail["price_entry"].split("\n"))
    out.append("")
    out.extend(_closing(result))
    return "\n".join(out)


def _per_unit(lines: list[Any], attribute: str) -> dict[str, Decimal]:
    """The lines' quantities summed per unit (tokens first, then as the units come)."""
    out: dict[str, Decimal] = {"tokens": Decimal(0)} if any(line.unit == "tokens" for line in lines) else {}
    for line in lines:
        out[line.unit] = out.get(line.unit, Decimal(0)) + getattr(line, attribute)
    return out


def _in_units(quantities: dict[str, Decimal], units: list[str], sign: bool = False) -> str:
    """A total of one unit as a number (``9,708``); of several, each with its unit (``9,708 tokens, 3 calls``)."""
    if not units:
        return "+0" if sign else "0"
    if len(units) == 1:
        value = quantities.get(units[0], Decimal(0))
        return f"{value:+,}" if sign else f"{value:,}"
    return ", ".join(f"{quantities.get(u, Decimal(0)):{'+,' if sign else ','}} {u}" for u in units)


def _quantities(quantities: dict[str, Decimal]) -> str:
    return " + ".join(f"{q:,} x {unit}" for unit, q in sorted(quantities.items()))


def _rollup_table(result: Any) -> str:
    usd = result.costs_compared
    t = result.totals
    header = ["resource", "month", "billed tok", *(["billed USD"] if usd else []), "metered tok",
              *(["metered USD", "unmetered USD"] if usd else ["unmetered tok"]), "coverage",
              "unexplained USD" if usd else "unexplained tok"]
    rows = []
    for r in result.rollups:
        rows.append([r.resource, r.month, f"{r.billed_tokens:,}", *([_amount(r.billed_cost)] if usd else []),
                     f"{r.metered_tokens:,}",
                     *([_amount(r.metered_cost), _amount(r.unmetered_cost)] if usd else [f"{r.unmetered_tokens:,}"]),
                     _coverage(r.coverage), _amount(r.unexplained_cost) if usd else f"{r.unexplained_tokens:,}"])
    from meter.reconcile.explain import Rollup

    whole = Rollup("total", "", sum((r.billed_tokens for r in result.rollups), Decimal(0)), t.billed,
                   sum(r.metered_tokens for r in result.rollups), t.metered,
                   sum((r.unmetered_tokens for r in result.rollups), Decimal(0)), t.unmetered,
                   sum((r.unexplained_tokens for r in result.rollups), Decimal(0)), t.unexplained, usd)
    rows.append([whole.resource, "", f"{whole.billed_tokens:,}", *([_amount(whole.billed_cost)] if usd else []),
                 f"{whole.metered_tokens:,}",
                 *([_amount(whole.metered_cost), _amount(whole.unmetered_cost)] if usd
                   else [f"{whole.unmetered_tokens:,}"]),
                 _coverage(whole.coverage),
                 _amount(whole.unexplained_cost) if usd else f"{whole.unexplained_tokens:,}"])
    return text_table(rows, header)


def _closing(result: Any) -> list[str]:
    """The closing lines: the Azure OpenAI bill, what is apart from it, and the unexplained share, each a sum of
    the totals printed above."""
    t = result.totals
    out = []
    if result.costs_compared:
        billed = _amount(t.billed.plus(t.unknown))
        if result.unknown:
            out.append(f"billed for Azure OpenAI: {_amount(t.billed)} USD in the lines + {_amount(t.unknown)} USD of "
                       f"unknown meters = {billed} USD")
        else:
            out.append(f"billed for Azure OpenAI: {billed} USD")
    apart = []
    if result.commitments:
        apart.append(f"commitments {_by_currency(t.commitments)} ({_quantities(t.commitment_quantities)})")
    if result.others:
        apart.append(f"other services {_by_currency(t.others)}")
    if apart:
        out.append(visible("apart from it: " + "; ".join(apart)))
    covered = [f"{r.resource} {r.month} {_coverage(r.coverage)}" for r in result.rollups if r.coverage is not None]
    if covered:
        out.append(visible("coverage (the billed cost meter metered): " + ", ".join(covered)))
    if result.costs_compared:
        unexplained = _amount(t.unexplained.plus(t.unknown))
        parts = (f"{_amount(t.unexplained)} USD in the lines + {_amount(t.unknown)} USD of unknown meters = "
                 if result.unknown else "")
        share = f"{result.unexplained_share:.2%}" + (" of what is priced" if result.unexplained_unpriced else "")
        out.append(f"unexplained: {parts}{unexplained} USD of {_amount(t.billed.plus(t.unknown))} USD billed "
                   f"({share})")
    else:
        out.append(f"unexplained: {result.unexplained:,} tokens of {result.billed_total:,} tokens billed "
                   f"({result.unexplained_share:.2%})")
    return out
