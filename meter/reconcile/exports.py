"""Reading Azure cost-export files: CSV or gzip, streamed, summed per day x resource x meter.

A month of a large tenant is millions of rows, so a file is read row by row and only sums
are kept (one per day, resource, meter and pricing model): memory grows with the number of
meters, not of rows. Rows of other services are counted and skipped. Every problem is an
``ExportError`` naming the file, the line and the column; nothing is half read.

Lines are physical lines, as an editor numbers them: a record whose quoted field holds a newline
spans two, and is named by the first. A record is bounded as it streams (``MAX_RECORD_CHARS``):
the csv module's own field limit refuses a long field only once the whole line is in memory,
and one 512 MB line cost a gigabyte before it did.

Units: ``Quantity`` is either tokens or price blocks (``1K``, ``1M``: ``UnitOfMeasure`` or
``x_PricingBlockSize``); which one is inferred per file from the rows' own price and cost
(``quantity x price / block = cost`` says tokens, ``quantity x price = cost`` says blocks) and
reported; a file with no price to tell is read as tokens, and says it assumed so.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from meter.reconcile.schemas import HeaderProblem, Layout, read_header

MAX_RECORD_CHARS = 1 << 20
"""The longest record read, in characters (1 Mi): far above any export's (tags and ``AdditionalInfo``
are a few kilobytes) and a few megabytes of memory at most. Longer is refused at its line."""


class ExportError(Exception):
    """A cost export that cannot be read: the file, the physical line (1 is the header) and the column.

    Line 0 is the file as a whole (it cannot be opened, is not UTF-8, is a broken gzip stream):
    the message then names no line, rather than a line that does not exist."""

    def __init__(self, file: str, line: int, column: str, problem: str) -> None:
        where = file + (f", line {line}" if line else "") + (f", column {column}" if column else "")
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.column, self.problem = file, line, column, problem


@dataclass
class Sum:
    """The rows of one (day, resource, meter, pricing model) in one file."""

    quantity: Decimal = Decimal(0)
    cost: Decimal | None = None
    rows: int = 0
    unit: str = ""
    block: int = 1
    first_line: int = 0
    location: str = ""


Key = tuple[date, str, str, str]
"""(day, resource id as written, meter name, pricing model)."""


@dataclass
class ExportFile:
    """One file read: its schema, its sums and what was inferred about it."""

    path: str
    schema: str
    sums: dict[Key, Sum] = field(default_factory=dict)
    rows: int = 0
    openai_rows: int = 0
    currency: str = ""
    cost_in: str = ""
    """Which column gave the cost compared: the billing currency's, or ``costInUsd``; ``""``: none."""
    tokens_votes: int = 0
    blocks_votes: int = 0
    reading: str = "tokens"
    reading_reason: str = ""


_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)?\s*([KkMm])?\b")
_OPENAI_WORDS = ("openai", "foundry", "cognitive services")


def parse_day(text: str) -> date:
    """``2026-11-03``, ``2026-11-03T00:00:00Z`` (FOCUS) or ``11/03/2026`` (month first, as Azure writes it)."""
    text = text.strip()
    match = _SLASH_DATE.fullmatch(text)
    if match:
        return date(int(match[3]), int(match[1]), int(match[2]))
    if len(text) >= 10 and text[4] == "-" and (len(text) == 10 or text[10] in "T "):
        return date.fromisoformat(text[:10])  # an ISO day, or its midnight in UTC (FOCUS's ChargePeriodStart)
    raise ValueError(text)


def block_size(unit: str) -> int:
    """Tokens per price block from ``UnitOfMeasure``: ``1K`` 1000, ``1M`` 1000000, ``Tokens`` 1, ``1 Hour`` 1."""
    match = _UNIT.match(unit)
    if match is None or (match[1] is None and match[2] is None):
        return 1
    number = Decimal(match[1] or 1)
    scale = {"k": 1000, "m": 1_000_000}.get((match[2] or "").lower(), 1)
    return int(number * scale)


def _number(text: str, file: str, line: int, column: str, required: bool) -> Decimal | None:
    text = text.strip()
    if not text:
        if required:
            raise ExportError(file, line, column, "empty: a number is needed")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ExportError(file, line, column, f"not a number: {text[:40]!r}") from None
    if not value.is_finite():
        raise ExportError(file, line, column, f"not a finite number: {text[:40]!r}")
    return value


def _open(path: Path) -> IO[str]:
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


class _Lines:
    """A text file's physical lines for ``csv.reader``, each record bounded as it streams.

    ``readline`` is given what is left of the record's allowance, so a line longer than that is
    never read whole: memory stays near ``limit`` characters whatever the file holds. The record
    is what the csv reader builds between two ``start_record`` calls, so a quoted field that
    goes on over many short lines is bounded too."""

    def __init__(self, name: str, handle: IO[str], limit: int = MAX_RECORD_CHARS) -> None:
        self.name, self.handle, self.limit = name, handle, limit
        self.line = 0
        """Physical lines read so far (the last one may be a part, when it is the one refused)."""
        self.record_line = 1
        """The physical line the record being read starts on."""
        self._used = 0

    def start_record(self) -> None:
        self.record_line, self._used = self.line + 1, 0

    def __iter__(self) -> Iterator[str]:
        readline, limit = self.handle.readline, self.limit  # a generator, locals: the reader's hot loop
        while text := readline(limit - self._used + 1):
            self.line += 1
            self._used += len(text)
            if self._used > limit:
                raise self._too_long()
            yield text

    def _too_long(self) -> ExportError:
        if self.record_line == self.line:
            return ExportError(self.name, self.line, "", f"is longer than {self.limit:,} characters: not a cost "
                                                         "export line (refused before reading it whole)")
        return ExportError(self.name, self.record_line, "", f"starts a record longer than {self.limit:,} "
                                                            f"characters (a quoted field still open at line "
                                                            f"{self.line:,}): not a cost export record")


def _records(lines: _Lines) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the physical line it starts on."""
    reader = csv.reader(lines)
    while True:
        lines.start_record()
        row = next(reader, None)
        if row is None:
            return
        yield lines.record_line, row


def _is_openai(row: list[str], layout: Layout) -> bool:
    text = " ".join(row[layout.index[f]] for f in ("meter_category", "meter_subcategory", "product")
                    if f in layout.index).lower()
    if any(word in text for word in _OPENAI_WORDS):
        return True
    return "/microsoft.cognitiveservices/" in row[layout.index["resource_id"]].lower()


def read_file(path: str | Path) -> ExportFile:
    """Read one export file to its sums; ``ExportError`` for anything that is not a readable export."""
    name = str(path)
    try:
        handle = _open(Path(path))
    except OSError as exc:
        raise ExportError(name, 0, "", f"cannot be read ({exc.strerror or exc})") from None
    lines = _Lines(name, handle)
    try:
        with handle:
            return _read(name, _records(lines))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise ExportError(name, 0, "", f"is not a CSV text file ({type(exc).__name__})") from None
    except csv.Error as exc:
        raise ExportError(name, lines.record_line, "", f"is not a well-formed CSV file ({exc})") from None


def _read(name: str, records: Iterator[tuple[int, list[str]]]) -> ExportFile:
    _, header = next(records, (1, None))
    if header is None:
        raise ExportError(name, 1, "", "is empty: no header")
    try:
        layout = read_header(header)
    except HeaderProblem as exc:
        raise ExportError(name, 1, exc.column, str(exc)) from None
    out = ExportFile(name, layout.schema.name)
    ix, names = layout.index, layout.names
    width = len(header)
    use_usd = "cost_usd" in ix
    out.cost_in = names["cost_usd"] if use_usd else names.get("cost", "")
    for line, row in records:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise ExportError(name, line, "", f"has {len(row)} cells; the header has {width}")
        out.rows += 1
        if not _is_openai(row, layout):
            continue
        out.openai_rows += 1
        try:
            day = parse_day(row[ix["day"]])
        except ValueError:
            raise ExportError(name, line, names["day"], f"not a date: {row[ix['day']][:40]!r}") from None
        quantity = _number(row[ix["quantity"]], name, line, names["quantity"], required=True)
        assert quantity is not None
        cost_field = "cost_usd" if use_usd else "cost"
        cost = _number(row[ix[cost_field]], name, line, names[cost_field], False) if cost_field in ix else None
        price = _number(row[ix["price"]], name, line, names["price"], False) if "price" in ix else None
        unit = row[ix["unit"]].strip() if "unit" in ix else ""
        block = block_size(unit)
        if "block_size" in ix and row[ix["block_size"]].strip():
            size = _number(row[ix["block_size"]], name, line, names["block_size"], True)
            assert size is not None
            block = int(size)
        if "currency" in ix and not out.currency:
            out.currency = "USD" if use_usd else row[ix["currency"]].strip().upper()
        pricing_model = row[ix["pricing_model"]].strip() if "pricing_model" in ix else ""
        key = (day, row[ix["resource_id"]].strip(), row[ix["meter_name"]].strip(), pricing_model)
        acc = out.sums.get(key)
        if acc is None:
            acc = out.sums[key] = Sum(unit=unit, block=block, first_line=line,
                                      location=row[ix["location"]].strip() if "location" in ix else "")
        acc.quantity += quantity
        acc.rows += 1
        if cost is not None:
            acc.cost = cost if acc.cost is None else acc.cost + cost
            # The price is in the billing currency: so is the cost to weigh it against.
            local = _number(row[ix["cost"]], name, line, names["cost"], False) if use_usd and "cost" in ix else cost
            if price is not None and local is not None and local > 0 and block > 1:
                tolerance = local * Decimal("0.001")  # relative: token costs are fractions of a cent
                as_tokens = abs(quantity * price / block - local) <= tolerance
                as_blocks = abs(quantity * price - local) <= tolerance
                if as_tokens != as_blocks:
                    out.tokens_votes += as_tokens
                    out.blocks_votes += as_blocks
    _decide_reading(out)
    return out


def _decide_reading(out: ExportFile) -> None:
    if out.tokens_votes or out.blocks_votes:
        out.reading = "blocks" if out.blocks_votes > out.tokens_votes else "tokens"
        out.reading_reason = (f"quantity x price / block = cost on {out.tokens_votes} rows, quantity x price = "
                              f"cost on {out.blocks_votes}")
    else:
        out.reading = "tokens"
        out.reading_reason = "assumed: no row has a price and a cost to tell"


def tokens(acc: Sum, reading: str) -> Decimal:
    """The tokens a sum stands for under a file's reading."""
    return acc.quantity * acc.block if reading == "blocks" else acc.quantity
