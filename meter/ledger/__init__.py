"""The durable ledger: one row per ``CallRecord``, with exact money, written off the caller's path.

``Meter(ledger="meter.sqlite")`` opens (or creates) the ledger at construction, so a path
that cannot be opened, a corrupt file or a ledger of a newer schema is a clear error there
(``LedgerError``, naming the ledger), never a failed call. Records then go to a bounded
queue that a writer thread drains in batches (``writer.LedgerWriter``).
"""

from meter.ledger.errors import LedgerError
from meter.ledger.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "LedgerError"]
