"""``LedgerError``: a ledger that cannot be used, said once, at construction, with its name."""

from __future__ import annotations


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
