"""``LedgerError`` (a ledger that cannot be used, said with its name: a URL without its password), and how a
ledger string is read (a ``postgresql://`` URL, or a SQLite path)."""

from __future__ import annotations


def is_url(where: str) -> bool:
    """A PostgreSQL ledger is a URL; anything else is a SQLite file."""
    return where.startswith(("postgresql://", "postgres://"))


def sqlite_path(text: str) -> str:
    """The file of a SQLite ledger: a path, or ``sqlite:///path``."""
    return text.removeprefix("sqlite:///")


def redacted(url: str) -> str:
    """A database URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else f"{scheme}{sep}{user}@{host}"
    return url


class LedgerError(Exception):
    """The ledger cannot be opened, is corrupt, or was written by a newer meter."""

    def __init__(self, ledger: str, problem: str) -> None:
        super().__init__(f"ledger {ledger}: {problem}")
        self.ledger = ledger
        self.problem = problem
