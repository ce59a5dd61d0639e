"""``open_ledger``: a ledger from what the user wrote (a path, ``sqlite:///path``, ``postgresql://...``)."""

from __future__ import annotations

import os
from pathlib import Path

from meter.ledger.errors import LedgerError
from meter.ledger.postgres import PostgresLedger
from meter.ledger.sqlite import SQLiteLedger


def open_ledger(where: str | os.PathLike[str]) -> SQLiteLedger | PostgresLedger:
    text = os.fspath(where)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresLedger(text, _redacted(text))
    path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else text
    if not path:
        raise LedgerError(repr(text), "no path given")
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        raise LedgerError(path, f"cannot be created: the folder {parent} does not exist")
    return SQLiteLedger(Path(path).expanduser())


def _redacted(url: str) -> str:
    """A database URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else f"{scheme}{sep}{user}@{host}"
    return url
