"""``LedgerError`` (a ledger that cannot be used, said with its name) and checks the ledger tools share."""

from __future__ import annotations

from datetime import date


def day_range(column: str, since: date | None, until: date | None) -> tuple[list[str], list[str]]:
    """SQL conditions (and their parameters) for ``since <= column < until``, UTC days, either end open."""
    where, params = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(since.isoformat())
    if until is not None:
        where.append(f"{column} < ?")
        params.append(until.isoformat())
    return where, params


def sqlite_only(where: object, what: str) -> None:
    """Reports, re-pricing and administration read SQLite ledgers only, for now: say so for a URL."""
    text = str(where)
    if text.startswith(("postgresql://", "postgres://")):
        scheme, _, rest = text.partition("://")
        host = rest.rpartition("@")[2]
        raise LedgerError(f"{scheme}://{host}", f"{what} reads SQLite ledgers only in this version of meter; "
                                                "query the PostgreSQL tables directly (docs/ledger.md)")


class LedgerError(Exception):
    """The ledger cannot be opened, is corrupt, or was written by a newer meter."""

    def __init__(self, ledger: str, problem: str) -> None:
        super().__init__(f"ledger {ledger}: {problem}")
        self.ledger = ledger
        self.problem = problem
