"""``meter pricing ...`` and ``meter price ...``: look at, check and use the price tables.

meter's command tree calls ``add_commands(commands)`` with its sub-parsers action;
every sub-command sets ``handler`` to a function ``(args) -> exit code``. Output
is plain text meant for people; errors go to stderr and give exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from meter.commands.price_tables import load_book, now
from meter.commands.pricing_retail import cmd_check, cmd_import_azure_retail
from meter.pricing.book import PriceBook
from meter.pricing.deployment_types import DEPLOYMENT_TYPES, canonical_deployment_type
from meter.pricing.errors import PricingFileError
from meter.pricing.listing import EntrySpans, entry_spans, region_groups, region_label, region_labels
from meter.pricing.model import KINDS, PRICE_KINDS, PriceRow
from meter.textout import money, say, text_table

_KIND_HEADERS = {kind.name: kind.header for kind in PRICE_KINDS}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pricing`` (with its sub-commands) and ``price`` to meter's command tree."""
    pricing = commands.add_parser(
        "pricing", help="price tables: list, show, diff, validate, check, import", description=__doc__
    )
    pricing.set_defaults(handler=_help_handler(pricing))
    sub = pricing.add_subparsers(dest="pricing_command", metavar="COMMAND")

    listing = sub.add_parser("list", help="models, deployment types and the prices in force")
    listing.add_argument("--at", type=_when, help="date (default: today, UTC)")
    listing.add_argument("--deployment-type", type=_deployment_type, help="only this deployment type")
    listing.add_argument("--model", help="only model ids containing this text")
    _table_option(listing)
    listing.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="the full history of one model, with corrections")
    show.add_argument("model", metavar="MODEL")
    _table_option(show)
    show.set_defaults(handler=cmd_show)

    diff = sub.add_parser("diff", help="prices that differ between two dates")
    diff.add_argument("--at", type=_when, action="append", required=True, help="give it twice: --at D1 --at D2")
    _table_option(diff)
    diff.set_defaults(handler=cmd_diff)

    validate = sub.add_parser("validate", help="check price table files (exit code 1 on errors)")
    validate.add_argument("files", metavar="FILE", nargs="+")
    validate.set_defaults(handler=cmd_validate)

    checking = sub.add_parser(
        "check",
        help="compare the tables with a saved Azure Retail Prices answer (exit code 1 on findings)",
        description="List every row that disagrees with the Retail data (by more than 0.5 %%), every Azure "
        "meter the tables lack, and every row priced where Azure has no meter.",
    )
    _retail_arguments(checking)
    _table_option(checking)
    checking.set_defaults(handler=cmd_check)

    retail = sub.add_parser(
        "import-azure-retail",
        help="write the prices a saved Azure Retail Prices answer has and the tables lack, as a user table",
    )
    _retail_arguments(retail)
    retail.add_argument("-o", "--output", metavar="OUT.toml", help="write the table here (default: stdout)")
    retail.add_argument("--version", dest="table_version", help="version id of the new table")
    retail.add_argument("--all", action="store_true", help="every mapped meter, not only what the tables lack")
    _table_option(retail)
    retail.set_defaults(handler=cmd_import_azure_retail)

    price = commands.add_parser("price", help="price one call by hand and print the breakdown")
    price.add_argument("model", metavar="MODEL")
    price.add_argument("--input", type=_count, default=0, help="input tokens (including cached)")
    price.add_argument("--output", type=_count, default=0, help="output tokens (including reasoning)")
    price.add_argument("--cached", type=_count, default=0, help="cached input tokens (part of --input)")
    price.add_argument("--cache-write", type=_count, default=0, help="cache-write tokens (part of --input)")
    price.add_argument("--reasoning", type=_count, default=0, help="reasoning tokens (part of --output)")
    price.add_argument("--audio-input", type=_count, default=0, help="audio input tokens (part of --input)")
    price.add_argument("--audio-output", type=_count, default=0, help="audio output tokens (part of --output)")
    price.add_argument("--cached-audio", type=_count, default=0,
                       help="cached audio input tokens (part of --cached and of --audio-input)")
    price.add_argument("--deployment-type", help="default GlobalStandard")
    price.add_argument("--region", help="Azure region (needed for Standard)")
    price.add_argument("--at", type=_when, help="call time (default: now)")
    price.add_argument("--believed-at", type=_when, help="ignore corrections recorded after this date")
    _table_option(price)
    price.set_defaults(handler=cmd_price)


# ---- argument helpers ----------------------------------------------------------


def _help_handler(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return handler


def _retail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE.json", nargs="+",
                        help="a saved Retail Prices API answer (one page, a list of pages, or one file per page)")
    parser.add_argument("--at", type=_when, help="the day the data was fetched (default: the file's "
                        "fetched_at, else its modification date)")


def _table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table", action="append", default=[], metavar="FILE", help="user table layered on the built-ins"
    )


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-06-01") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of tokens") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: token counts cannot be negative")
    return value


def _deployment_type(text: str) -> str:
    try:
        return canonical_deployment_type(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---- pricing list / show / diff -----------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """Rows shown on one line: same model, deployment type, region and tier."""

    model: str
    deployment_type: str
    region: str
    tier: int

    def sort_key(self) -> tuple[str, int, str, int]:
        return (self.model, DEPLOYMENT_TYPES.index(self.deployment_type), self.region, self.tier)


def _tier_text(tier: int) -> str:
    return f">{tier // 1000}k" if tier else ""


def _grouped(book: PriceBook, rows: Iterable[PriceRow]) -> dict[_Group, dict[str, Decimal]]:
    groups: dict[_Group, dict[str, Decimal]] = {}
    for row in rows:
        group = _Group(row.model, row.deployment_type, row.region or "", row.above_input_tokens)
        groups.setdefault(group, {})[row.kind] = book.row_price(row)[0]
    return groups


def _labels(book: PriceBook) -> dict[str, str]:
    """Every region group of the book by a readable name (``meter.pricing.listing.region_labels``)."""
    return region_labels(region_groups(book.rows()))


def cmd_list(args: argparse.Namespace) -> int:
    """Every model with the prices in force at ``--at`` (USD per 1M tokens)."""
    book = load_book(args)
    if book is None:
        return 1
    at = args.at or now()
    rows = [
        r
        for r in book.effective_rows(at)
        if (args.deployment_type is None or r.deployment_type == args.deployment_type)
        and (args.model is None or args.model.lower() in r.model)
    ]
    groups = _grouped(book, rows)
    labels = _labels(book)
    lines = [
        [g.model, g.deployment_type, region_label(g.region, labels), _tier_text(g.tier)]
        + [money(groups[g][k]) if k in groups[g] else "-" for k in KINDS]
        for g in sorted(groups, key=_Group.sort_key)
    ]
    say(f"price table {book.version}; prices in force on {at.date().isoformat()}, USD per 1M tokens")
    print(text_table(lines, ["model", "deployment type", "region", "tier", *(_KIND_HEADERS[k] for k in KINDS)]))
    shown = region_groups(rows)
    if shown:
        print("Region groups (regions priced alike; the tables and entry ids name the generated ones r-<hash>):")
    for name, members in sorted(shown.items(), key=lambda item: (item[1][0], len(item[1]), labels[item[0]])):
        aka = f" ({name})" if labels[name] != name else ""
        say(f"region group {labels[name]}{aka}: {', '.join(members)}")
    print(f"{len({g.model for g in groups})} models; deployment types: {', '.join(DEPLOYMENT_TYPES)}")
    print("Provisioned types (*ProvisionedManaged) are billed per PTU-hour: token cost 0, basis 'provisioned'.")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """All entries of one model over time, each with its source and corrections."""
    book = load_book(args)
    if book is None:
        return 1
    model = args.model.lower() if args.model.lower() in book.models() else book.resolve_model(args.model)
    if model is None:
        say(f"error: unknown model {args.model!r}; see `meter pricing list`", sys.stderr)
        return 1
    rows = book.rows(model)
    aliases = book.aliases_of(model)
    say(f"{model}" + (f" (also: {', '.join(aliases)})" if aliases else "") + f"; table {book.version}")
    entries: dict[str, list[PriceRow]] = {}
    for row in rows:
        entries.setdefault(row.entry_id, []).append(row)
    ordered = sorted(
        entries.values(),
        key=lambda rs: (
            DEPLOYMENT_TYPES.index(rs[0].deployment_type),
            rs[0].region or "",
            rs[0].above_input_tokens,
            rs[0].effective_from,
        ),
    )
    labels = _labels(book)
    spans = {rs[0].entry_id: entry_spans(book, rs) for rs in ordered}
    replaces: dict[str, list[tuple[str, date, tuple[str, ...]]]] = {}
    for entry_id, found in spans.items():
        for regions, entry_days in found.spans:
            for span in entry_days:
                if span.instead is not None:
                    replaces.setdefault(span.instead.entry_id, []).append((entry_id, span.start, regions))
    for entry_rows in ordered:
        first = entry_rows[0]
        until = first.effective_until.isoformat() if first.effective_until else "open"
        prices = ", ".join(f"{_KIND_HEADERS[r.kind]} {money(r.usd_per_1m)}" for r in entry_rows)
        recorded = f", recorded {first.recorded_at}" if first.recorded_at else ""
        print()
        say(first.entry_id)
        if first.region and first.regions != (first.region,):
            group = labels.get(first.region, first.region)
            say(f"  regions: {', '.join(first.regions)}" + (f" (group {group})" if group != first.region else ""))
        say(f"  {first.effective_from} to {until}{recorded}: {prices}")
        for line in _applies(book, entry_rows, spans[first.entry_id], entries):
            say(line)
        for line in _replaces(first, replaces.get(first.entry_id, [])):
            say(line)
        say(f"  source: {first.source}")
        if first.note:
            say(f"  note: {first.note}")
        changes: dict[tuple[str, str | None, str], list[str]] = {}
        for row in entry_rows:
            for corr in book.corrections_for(row.id):
                key = (corr.recorded_at.isoformat(), corr.reason, corr.source)
                changes.setdefault(key, []).append(
                    f"{_KIND_HEADERS[row.kind]} {money(row.usd_per_1m)} -> {money(corr.usd_per_1m)}"
                )
        for (recorded, reason, source), parts in sorted(changes.items()):
            say(f"  corrected {recorded}: {', '.join(parts)}" + (f" ({reason})" if reason else ""))
            say(f"    source: {source}")
    return 0


def _prices(book: PriceBook, rows: Iterable[PriceRow]) -> dict[str, Decimal]:
    return {row.kind: book.row_price(row)[0] for row in rows}


def _why(book: PriceBook, entry: list[PriceRow], other: PriceRow, others: list[PriceRow]) -> str:
    """Why ``other`` wins over ``entry`` (or the other way round), and whether the prices differ."""
    layer = {t.file: i for i, t in enumerate(book.tables)}
    later = layer[other.file] != layer[entry[0].file]
    reason = f"a later table, {Path(other.file).name}" if later else "a newer entry of the same table"
    same = _prices(book, entry) == _prices(book, others)
    return f"{reason}; {'same' if same else 'other'} prices"


def _applies(book: PriceBook, entry: list[PriceRow], found: EntrySpans,
             entries: dict[str, list[PriceRow]]) -> list[str]:
    """``applies: ...`` lines for an entry another one takes over from on some days (nothing when it never is)."""
    if found.always:
        return []
    lines = []
    for regions, days in found.spans:
        where = "" if len(found.spans) == 1 else f" in {', '.join(regions)}"
        parts = []
        for span in days:
            end = span.end.isoformat() if span.end else "open"
            if span.instead is None:
                parts.append(f"{span.start} to {end}")
            else:
                why = _why(book, entry, span.instead, entries[span.instead.entry_id])
                until = f" to {span.end}" if span.end else ""
                parts.append(f"from {span.start}{until} {span.instead.entry_id} applies instead ({why})")
        never = "" if any(s.instead is None for s in days) else "never; "
        lines.append(f"  applies{where}: {never}" + "; ".join(parts))
    return lines


def _replaces(first: PriceRow, replaced: list[tuple[str, date, tuple[str, ...]]]) -> list[str]:
    """``replaces ...`` lines for an entry that prices days another one also covers."""
    seen: dict[tuple[str, date], list[str]] = {}
    for entry_id, start, regions in replaced:
        seen.setdefault((entry_id, start), []).extend(r for r in regions if r)
    lines = []
    for (entry_id, start), names in sorted(seen.items(), key=lambda item: (item[0][1], item[0][0])):
        where = f" (in {', '.join(sorted(names))})" if names and len(names) < len(first.regions) else ""
        lines.append(f"  replaces {entry_id} from {start}{where}")
    return lines


def cmd_diff(args: argparse.Namespace) -> int:
    """Prices added, removed or changed between two dates."""
    if len(args.at) != 2:
        print("error: give exactly two dates: --at D1 --at D2", file=sys.stderr)
        return 1
    book = load_book(args)
    if book is None:
        return 1
    first, second = (_grouped(book, book.effective_rows(at)) for at in args.at)
    labels = _labels(book)
    lines: list[list[str]] = []
    for group in sorted(set(first) | set(second), key=_Group.sort_key):
        before, after = first.get(group, {}), second.get(group, {})
        for kind in KINDS:
            old, new = before.get(kind), after.get(kind)
            if old != new:
                lines.append(
                    [
                        group.model,
                        group.deployment_type,
                        region_label(group.region, labels),
                        _tier_text(group.tier),
                        _KIND_HEADERS[kind],
                        "-" if old is None else money(old),
                        "-" if new is None else money(new),
                    ]
                )
    d1, d2 = (at.date().isoformat() for at in args.at)
    say(f"price table {book.version}; changes from {d1} to {d2}, USD per 1M tokens")
    if not lines:
        print("no differences")
        return 0
    print(text_table(lines, ["model", "deployment type", "region", "tier", "kind", d1, d2]))
    return 0


# ---- validate / import ------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """Load each file on top of the built-ins and report every problem found."""
    failed = False
    for file in args.files:
        try:
            book = PriceBook.load(file)
        except PricingFileError as exc:
            failed = True
            for problem in exc.problems:
                say(f"error: {problem}", sys.stderr)
            continue
        table = book.tables[-1]
        say(
            f"ok: {file}: table {table.version} published {table.published}, {len(table.rows)} rows, "
            f"{len(table.corrections)} corrections"
        )
    return 1 if failed else 0


# ---- price -------------------------------------------------------------------------


@dataclass(frozen=True)
class _CliUsage:
    input_tokens: int
    cached_input_tokens: int
    cache_write_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    audio_input_tokens: int
    audio_output_tokens: int
    total_tokens: int
    cached_audio_input_tokens: int = 0


def cmd_price(args: argparse.Namespace) -> int:
    """Price one call from token counts and print the breakdown (exit 1 when unknown)."""
    book = load_book(args)
    if book is None:
        return 1
    usage = _CliUsage(
        input_tokens=args.input,
        cached_input_tokens=args.cached,
        cache_write_input_tokens=args.cache_write,
        output_tokens=args.output,
        reasoning_output_tokens=args.reasoning,
        audio_input_tokens=args.audio_input,
        audio_output_tokens=args.audio_output,
        total_tokens=args.input + args.output,
        cached_audio_input_tokens=args.cached_audio,
    )
    at = args.at or now()
    cost = book.cost_of(
        usage,
        model=args.model,
        deployment_type=args.deployment_type,
        region=args.region,
        at=at,
        believed_at=args.believed_at,
    )
    assumed = " (assumed: no deployment type given)" if cost.assumed_deployment_type else ""
    say(f"model:           {cost.model or 'unknown'} (requested {args.model})")
    say(f"deployment type: {cost.deployment_type or 'unknown'}{assumed}")
    if args.region:
        say(f"region:          {args.region}")
    print(
        f"at:              {at.isoformat()}" + (f" (believed at {args.believed_at.date()})" if args.believed_at else "")
    )
    say(f"table version:   {cost.table_version}")
    if cost.long_context:
        print("long context:    input above the tier threshold: every token at the long-context rate")
    lines = []
    for kind, tokens in cost.tokens.items():
        note = f"incl. {args.reasoning} reasoning" if kind == "output" and args.reasoning else ""
        unit = cost.unit_prices.get(kind)
        lines.append([kind, str(tokens), "-" if unit is None else money(unit), money(cost.amounts[kind]), note])
    lines.append(["total", "", "", money(cost.total), ""])
    print(text_table(lines, ["kind", "tokens", "USD/1M", "USD", ""]))
    say(f"basis: {cost.basis}" + (f" ({cost.reason})" if cost.reason else ""))
    for row_id in cost.row_ids:
        say(f"row: {row_id}")
    return 1 if cost.basis == "unknown" else 0
