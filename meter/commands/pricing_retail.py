"""``meter pricing check`` and ``meter pricing import-azure-retail``: the tables against Azure's Retail Prices data.

Both read the Retail data the same way (a saved API response, pages of one, or a
directory of them; see docs/pricing.md) and share one loader, so they agree on
what the data holds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from meter.commands.price_tables import load_book, now
from meter.pricing.book import PriceBook
from meter.pricing.check import TOLERANCE, Finding, check
from meter.pricing.errors import PricingFileError
from meter.pricing.retail import RetailData, combine, load_retail, openai_items
from meter.pricing.retail_import import import_retail
from meter.textout import money, say, say_error


def _retail(args: argparse.Namespace) -> tuple[RetailData, date, str] | None:
    """The files as one answer, the day it holds for, and a line saying where that day came from."""
    parts: list[RetailData] = []
    days: list[date] = []
    said: list[str] = []
    try:
        for file in args.files:
            data = load_retail(file)
            parts.append(data)
            if data.fetched is not None:
                days.append(data.fetched)
                said.append(f"{file}: fetched {data.fetched}")
            else:
                day = datetime.fromtimestamp(Path(file).stat().st_mtime, UTC).date()
                days.append(day)
                said.append(f"{file}: no fetch date in the file, using its modification date {day}")
    except PricingFileError as exc:
        say_error(exc)
        return None
    data = combine(parts)
    if data.incomplete:
        print("warning: every page read has a NextPageLink: the answer's last page is missing",
              file=sys.stderr)
    if args.at is not None:
        return data, args.at.date(), f"data of {args.at.date()} (--at)"
    return data, min(days), "; ".join(said)


def _retail_and_book(args: argparse.Namespace) -> tuple[RetailData, date, str, PriceBook] | None:
    """Both inputs of check and import, or ``None`` once every error is printed."""
    loaded = _retail(args)
    book = load_book(args)
    if loaded is None or book is None:
        return None
    return (*loaded, book)


def _regions(regions: list[str]) -> str:
    named = [r or "every region" for r in sorted(set(regions))]
    if len(named) <= 4:
        return ", ".join(named)
    return f"{len(named)} regions ({', '.join(named[:3])}, ...)"


def _grouped_findings(findings: Iterable[Finding]) -> list[str]:
    """One line per row and meter price, with the regions it holds for."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for f in findings:
        tier = f" above {f.key.above_input_tokens}" if f.key.above_input_tokens else ""
        head = f"{f.key.model} {f.key.deployment_type} {f.key.kind}{tier}"
        if f.row is None:
            text = f"{head}: no row; meter {f.meter!r} {money(f.meter_price)} from {f.start}"
        else:
            later = (f"; the row starts {f.row.effective_from}, after the meter: a change the data does not show"
                     if f.row.effective_from > f.start else "")
            text = (f"{head} on {f.day}: table {money(f.table_price)} ({f.row.id}), "
                    f"meter {f.meter!r} {money(f.meter_price)} from {f.start}{later}")
        groups.setdefault((text,), []).append(f.region)
    return [f"{text} [{_regions(regions)}]" for (text,), regions in groups.items()]


def cmd_check(args: argparse.Namespace) -> int:
    """The tables against a saved Retail answer; exit code 1 when anything disagrees or is missing."""
    inputs = _retail_and_book(args)
    if inputs is None:
        return 1
    data, day, said, book = inputs
    items = openai_items(data.items)
    result = check(book, items, at=day)
    say(f"Retail data: {said}")
    say(f"tables: {book.version}; {result.compared} Azure OpenAI prices of tokens, tool calls, audio and images "
        f"(meter x region), compared on each meter's start and on {day}")
    print(f"agree within {money(TOLERANCE * 100)} %: {result.agree}")
    differ = _grouped_findings(result.differ)
    print(f"disagree: {len(result.differ)}" + (":" if differ else ""))
    for line in differ:
        say(f"  {line}")
    missing = _grouped_findings(result.missing)
    print(f"missing from the tables: {len(result.missing)}" + (":" if missing else ""))
    for line in missing:
        say(f"  {line}")
    print(f"rows priced where Azure has no meter: {len(result.no_meter)}" + (":" if result.no_meter else ""))
    for n in result.no_meter:
        say(f"  {n.what}")
    if result.unmetered_models:
        shown = result.unmetered_models[:8]
        more = f", and {len(result.unmetered_models) - len(shown)} more" if len(result.unmetered_models) > 8 else ""
        say(f"models priced that the data has no meter for ({len(result.unmetered_models)}; not compared): "
            + ", ".join(shown) + more)
    categories = result.unmapped_by_category()
    if categories:
        say("not compared (no token price kind in the tables): "
            + ", ".join(f"{c} {n}" for c, n in categories.items()))
    if result.clean:
        print("ok: the tables agree with the data")
        return 0
    print("run `meter pricing import-azure-retail` on the same files to write the missing and changed prices "
          "as a user table")
    return 1


def cmd_import_azure_retail(args: argparse.Namespace) -> int:
    """Write what the Retail answer has and the tables lack; report what was left out."""
    inputs = _retail_and_book(args)
    if inputs is None:
        return 1
    data, day, said, book = inputs
    today = now().date()
    names = ", ".join(Path(f).name for f in args.files)
    result = import_retail(
        book,
        data,
        version=args.table_version or f"azure-retail-{today.isoformat()}",
        published=today,
        source_name=f"saved answer {names}",
        at=day,
        everything=args.all,
    )
    say(f"Retail data: {said}", sys.stderr)
    if args.output:
        try:
            Path(args.output).write_text(result.toml, encoding="utf-8")
        except OSError as exc:
            say(f"error: {args.output}: cannot write: {exc.strerror or exc}", sys.stderr)
            return 1
        say(f"wrote {args.output}", sys.stderr)
    else:
        sys.stdout.write(result.toml)
    for line in result.report().split("\n"):  # its own lines, each shown visible
        say(line, sys.stderr)
    return 0
