"""What meter's command-line tools share: text for people at a terminal, day arguments and CSV cells.

One place for the commands (``meter.commands``) and the apps (the demo's report), so every
tool escapes, lays out and parses the same way. It imports nothing of meter, so any part of
meter may use it: the layering test (``tests/meter/test_structure.py``) keeps it a leaf.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import TextIO

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
    """``error: ...`` on stderr, shown ``visible``; an error that lists its ``problems`` (a price table's
    ``PricingFileError`` does) gets them one per line, as they read. The attribute is looked up, not the
    class, so this module needs nothing of ``meter.pricing``."""
    problems = tuple(getattr(exc, "problems", None) or ())
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


def money(value: Decimal | None) -> str:
    """An exact amount for people: every significant digit (never rounded, so never a rounded zero:
    an embeddings call's 0.00000044 stays that), no trailing zeros of the arithmetic, ``unknown`` for
    no price."""
    if value is None:
        return "unknown"
    return format(value.normalize(), "f") if value else "0"


def money_total(value: Decimal, unpriced: int) -> str:
    """A sum of costs for people that never hides the calls it leaves out: ``12.34`` when every call
    was priced, ``12.34 + 2 unpriced`` when some could not be, ``unknown (2 unpriced)`` when none
    could. Unknown is never shown as 0 (CSV and JSON keep the two exact fields apart)."""
    if not unpriced:
        return money(value)
    return f"{money(value)} + {unpriced} unpriced" if value else f"unknown ({unpriced} unpriced)"


def utc_day(text: str) -> date:
    """An argparse type: a UTC day like 2026-11-01 (``--since``, ``--until``, ``--before`` of the ledger tools)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def spreadsheet_cell(value: object) -> object:
    """A CSV text cell a spreadsheet will not run as a formula (a team or resource name may start with ``=``)."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value
