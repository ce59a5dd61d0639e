"""What the pricing commands share: loading the tables named on the command line, and printing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO

from meter.pricing.book import PriceBook
from meter.pricing.errors import PricingFileError


def load_book(args: argparse.Namespace) -> PriceBook | None:
    try:
        return PriceBook.load(*args.table)
    except PricingFileError as exc:
        say_error(exc)
        return None


def money(value: Decimal | None) -> str:
    if value is None:
        return "unknown"
    return format(value.normalize(), "f") if value else "0"


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` as a terminal should show it: every character it would act on or hide, as an escape.

    Data reaches the tables and lines people read: a team name from ``meter.attribute``, a meter
    name or currency from a cost export, a model or source from a price table, a path from the
    command line. Raw, ``ESC [2J`` would clear the terminal, BEL ring it, CR overwrite the line,
    U+202E reverse what follows it and a newline forge a row. What Python's ``repr`` escapes is
    escaped here, the same way (``\\x1b``, ``\\n``, ``\\u202e``): C0, DEL and C1 controls, format
    characters (bidi overrides and isolates, zero-width ones), line and paragraph separators,
    lone surrogates (which would also fail to encode), unassigned and private-use code points,
    and spaces other than the space. Backslashes are kept as they are (paths): the result is
    for reading, not for parsing back; CSV and JSON are the exact formats."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def say(text: str, file: TextIO | None = None) -> None:
    """Print one line made from data, shown ``visible``: it stays one line, and runs nothing."""
    print(visible(text), file=file)


def say_error(exc: Exception) -> None:
    """``error: ...`` on stderr, shown ``visible``; a price table's several problems one per line, as they read."""
    problems = exc.problems if isinstance(exc, PricingFileError) else ()
    if len(problems) <= 1:
        say(f"error: {exc}", sys.stderr)
        return
    say(f"error: {len(problems)} problems:", sys.stderr)
    for problem in problems:
        say(f"  {problem}", sys.stderr)


def text_table(rows: Iterable[list[str]], header: list[str]) -> str:
    """Left-aligned text columns, every cell shown ``visible``: a cell cannot add a row or act on the terminal."""
    all_rows = [[visible(cell) for cell in row] for row in (header, *rows)]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)


def now() -> datetime:
    return datetime.now(UTC)
