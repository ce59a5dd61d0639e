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
reported. A file with no cost columns (usage only) is read from the unit of its quantity: an EA or
MCA ``UnitOfMeasure`` of price blocks (``1K``, ``1M``, ``10K``) says blocks, as cost-details rows
bill ``quantity x unit price = cost``; FOCUS's ``ConsumedUnit`` (``Tokens``) says tokens; with
neither, tokens are assumed, and the file says so.

Services: a row is Azure OpenAI when its category, subcategory or product says so (``Azure
OpenAI``, ``Foundry Models``), or when it is a Cognitive Services row whose meter is a model's (it
names tokens, a provisioned deployment, or parses as a model meter). Other Cognitive Services rows
(Language ``Standard Text Records``, Speech, Vision) are summed apart as other services; rows of
any other service are counted and skipped.

Deployments: a ``Tags`` cell (JSON, with or without its braces, as EA writes it) with a
``deployment`` key (any case; ``deploymentName``, ``deployment-name``, ``deployment_name`` too)
splits the row's resource by deployment.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from meter.pricing.meters import UnmappedMeter, parse_meter
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
    service: str = ""
    """For another service's rows: its name (the subcategory, else the product or category)."""


Key = tuple[date, str, str, str, str]
"""(day, resource id as written, meter name, pricing model, deployment tag or ``""``)."""


@dataclass
class ExportFile:
    """One file read: its schema, its sums and what was inferred about it."""

    path: str
    schema: str
    sums: dict[Key, Sum] = field(default_factory=dict)
    others: dict[Key, Sum] = field(default_factory=dict)
    """Rows of other Cognitive Services (Language, Speech, Vision) on the same kind of resource."""
    rows: int = 0
    openai_rows: int = 0
    other_rows: int = 0
    block_unit_rows: int = 0
    """Azure OpenAI rows whose quantity's own unit is a price block (``UnitOfMeasure`` ``1K``, ``1M``)."""
    block_units: set[str] = field(default_factory=set)
    unit_column: str = ""
    currency: str = ""
    cost_in: str = ""
    """Which column gave the cost compared: the billing currency's, or ``costInUsd``; ``""``: none."""
    tokens_votes: int = 0
    blocks_votes: int = 0
    reading: str = "tokens"
    reading_reason: str = ""


_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)?\s*([KkMm])?\b")
_COGNITIVE_WORDS = ("cognitive services", "foundry", "ai services")


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


AI, OTHER = "ai", "other"


def _model_meter(meter: str) -> bool:
    """A meter name that is a model's: it counts tokens, is a provisioned deployment's, or parses as one."""
    lowered = meter.lower()
    if any(word in lowered for word in ("token", "provisioned", " ptu")):
        return True
    try:
        parse_meter(meter)
    except UnmappedMeter:
        return False
    return True


def _service(row: list[str], layout: Layout) -> str | None:
    """``AI`` for an Azure OpenAI row, ``OTHER`` for another Cognitive Services row, ``None`` for the rest."""
    labels = [row[layout.index[f]] for f in ("meter_category", "meter_subcategory", "product") if f in layout.index]
    text = " ".join(labels).lower()
    if "openai" in text or "foundry models" in text:
        return AI
    if not (any(word in text for word in _COGNITIVE_WORDS)
            or "/microsoft.cognitiveservices/" in row[layout.index["resource_id"]].lower()):
        return None
    return AI if _model_meter(row[layout.index["meter_name"]]) else OTHER


def _service_name(row: list[str], layout: Layout) -> str:
    for f in ("meter_subcategory", "product", "meter_category"):
        if f in layout.index and row[layout.index[f]].strip():
            return row[layout.index[f]].strip()
    return "Cognitive Services"


_DEPLOYMENT_TAGS = frozenset({"deployment", "deploymentname", "deployment-name", "deployment_name"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def deployment_tag(text: str) -> str:
    """The deployment a ``Tags`` cell names (``{"deployment": "chat-prod"}``, or EA's ``"deployment":
    "chat-prod"`` without braces), lower case; ``""`` for none, or a cell that is not JSON."""
    if "deployment" not in text.lower():
        return ""
    text = text.strip()
    for candidate in (text, "{" + text + "}"):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            for key, tag in value.items():
                if key.strip().lower() in _DEPLOYMENT_TAGS and isinstance(tag, str) and tag.strip():
                    return _CONTROL.sub("?", tag.strip().lower())
        return ""
    return ""


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
    out.unit_column = names.get("unit", "")
    for line, row in records:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise ExportError(name, line, "", f"has {len(row)} cells; the header has {width}")
        out.rows += 1
        service = _service(row, layout)
        if service is None:
            continue
        if service == AI:
            out.openai_rows += 1
        else:
            out.other_rows += 1
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
        deployment = deployment_tag(row[ix["tags"]]) if "tags" in ix else ""
        key = (day, row[ix["resource_id"]].strip(), row[ix["meter_name"]].strip(), pricing_model, deployment)
        sums = out.sums if service == AI else out.others
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = Sum(unit=unit, block=block, first_line=line,
                                  location=row[ix["location"]].strip() if "location" in ix else "",
                                  service="" if service == AI else _service_name(row, layout))
        acc.quantity += quantity
        acc.rows += 1
        if cost is not None:
            acc.cost = cost if acc.cost is None else acc.cost + cost
        if service != AI:
            continue
        if block_size(unit) > 1:
            out.block_unit_rows += 1
            if len(out.block_units) < 8:
                out.block_units.add(unit)
        if cost is not None:
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
    elif not out.cost_in and out.block_unit_rows:
        out.reading = "blocks"
        units = ", ".join(sorted(out.block_units))
        out.reading_reason = (f"no cost columns: {out.unit_column} gives price blocks ({units})"
                              f" on {out.block_unit_rows} rows, and cost-details rows bill quantity x unit price = "
                              "cost; --quantity tokens if this file counts tokens")
    elif not out.cost_in and out.unit_column:
        out.reading = "tokens"
        out.reading_reason = f"no cost columns: {out.unit_column} counts tokens, not price blocks"
    else:
        out.reading = "tokens"
        out.reading_reason = "assumed: no row has a price and a cost to tell"


def tokens(acc: Sum, reading: str) -> Decimal:
    """The tokens a sum stands for under a file's reading."""
    return acc.quantity * acc.block if reading == "blocks" else acc.quantity
