"""``open_ledger``: a ledger from what the user wrote (a path, ``sqlite:///path``, ``postgresql://...``)."""

from __future__ import annotations

import os
from pathlib import Path

from meter.ledger.errors import LedgerError, is_url, redacted, sqlite_path
from meter.ledger.postgres import PostgresLedger
from meter.ledger.sqlite import SQLiteLedger


def open_ledger(where: str | os.PathLike[str], index_keys: tuple[str, ...] = ()) -> SQLiteLedger | PostgresLedger:
    """Open (creating when missing) the ledger for writing; ``index_keys``: attribution keys to index."""
    text = os.fspath(where)
    if is_url(text):
        return PostgresLedger(text, redacted(text), index_keys)
    path = sqlite_path(text)
    if not path:
        raise LedgerError(repr(text), "no path given")
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        raise LedgerError(path, f"cannot be created: the folder {parent} does not exist")
    return SQLiteLedger(Path(path).expanduser(), index_keys)
