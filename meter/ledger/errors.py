"""``LedgerError``: a ledger that cannot be used, said once, at construction, with its name."""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger cannot be opened, is corrupt, or was written by a newer meter."""

    def __init__(self, ledger: str, problem: str) -> None:
        super().__init__(f"ledger {ledger}: {problem}")
        self.ledger = ledger
        self.problem = problem
