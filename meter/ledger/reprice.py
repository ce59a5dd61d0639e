"""Re-pricing the ledger with the price book as it is now: what would change, and (``apply``) recording it.

Every call with usage is priced again from its stored token counts, the model it was priced
as (or the served model, for a call that was unknown then), its deployment type and region
and its start time, with today's tables and corrections (and the user's tables). A call whose
new total differs from its current one is a change; unknown that stays unknown is not;
unknown that became known is counted as such. ``apply`` adds the new cost rows under the
new table version (``current`` moves to them) and never touches the rows reported before.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.core.record import Usage
from meter.ledger.errors import LedgerError, day_range, sqlite_only
from meter.ledger.rows import split_money
from meter.ledger.schema import COST_COLUMNS
from pricing import PriceBook

_USAGE = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
          "reasoning_output_tokens", "audio_input_tokens", "audio_output_tokens", "total_tokens",
          "cached_audio_input_tokens")


@dataclass
class Change:
    """The calls of one (model, deployment type, day) whose price changed."""

    calls: int = 0
    before: Decimal = Decimal(0)
    after: Decimal = Decimal(0)
    newly_priced: int = 0
    """Calls that were unknown and have a price now (their ``before`` adds nothing)."""
    now_unknown: int = 0
    """Calls that had a price and cannot be priced now (their ``after`` adds nothing)."""


@dataclass
class Repricing:
    checked: int = 0
    changes: dict[tuple[str, str, str], Change] = field(default_factory=dict)
    table_version: str | None = None
    applied: int = 0

    @property
    def changed(self) -> int:
        return sum(c.calls for c in self.changes.values())


def reprice(path: str | Path, book: PriceBook, since: date | None = None, until: date | None = None,
            apply: bool = False) -> Repricing:
    sqlite_only(path, "meter reprice")
    if not Path(path).is_file():
        raise LedgerError(str(path), "does not exist")
    where, params = day_range("c.started_at", since, until)
    where.insert(0, "c.input_tokens IS NOT NULL")
    sql = f"""SELECT c.id, c.started_at, c.usage_source, c.deployment, c.response_model, c.deployment_type, c.region,
                     {", ".join("c." + u for u in _USAGE)}, k.table_version, k.total, k.model, k.deployment_type,
                     k.region
              FROM calls c LEFT JOIN costs k ON k.call_id = c.id AND k.current = 1
              WHERE {" AND ".join(where)} ORDER BY c.started_at"""
    result = Repricing()
    new_rows: list[tuple[Any, ...]] = []
    superseded: list[tuple[str, str]] = []
    now = datetime.now(UTC).isoformat()
    try:
        with sqlite3.connect(path) as db:
            for row in db.execute(sql, params):
                call_id, started, source, deployment, served, dtype, region = row[:7]
                usage = Usage(**{name: value or 0 for name, value in zip(_USAGE, row[7:7 + len(_USAGE)],
                                                                          strict=True)})
                version, total, priced_model, priced_dtype, priced_region = row[7 + len(_USAGE):]
                at = datetime.fromisoformat(started)
                cost = book.price(usage, model=priced_model or served or deployment,
                                  deployment_type=priced_dtype or dtype, region=priced_region or region, at=at,
                                  estimated=source == "estimated")
                result.checked += 1
                before = None if total is None else Decimal(total)
                if cost.total == before and version is not None:
                    continue
                if cost.total is None and before is None:
                    continue  # unknown stays unknown
                key = (cost.model or priced_model or served or "?", cost.deployment_type or dtype or "?",
                       started[:10])
                change = result.changes.setdefault(key, Change())
                change.calls += 1
                change.before += before or 0
                change.after += cost.total or 0
                change.newly_priced += before is None
                change.now_unknown += cost.total is None
                result.table_version = cost.table_version
                if cost.table_version == version:
                    continue  # same version, different total: only possible after a table edit without a version
                nano, atto = split_money(cost.total)
                new_rows.append((call_id, cost.table_version, now, 0, 1, None if cost.total is None else
                                 format(cost.total, "f"), nano, atto, cost.currency, cost.basis, int(cost.estimated),
                                 cost.model, cost.deployment_type, cost.region,
                                 json.dumps({k: None if v is None else format(v, "f")
                                             for k, v in cost.amounts.items()}, sort_keys=True),
                                 json.dumps({k: format(v, "f") for k, v in cost.unit_prices.items()}, sort_keys=True),
                                 json.dumps(list(cost.row_ids)), cost.reason))
                if version is not None:
                    superseded.append((call_id, version))
            if apply and new_rows:
                db.execute("BEGIN")
                db.executemany("UPDATE costs SET current = 0 WHERE call_id = ? AND table_version = ?", superseded)
                db.executemany(f"INSERT OR REPLACE INTO costs ({', '.join(COST_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(COST_COLUMNS))})", new_rows)
                db.execute("COMMIT")
                result.applied = len(new_rows)
    except sqlite3.DatabaseError as exc:
        raise LedgerError(str(path), f"cannot be re-priced ({exc})") from None
    return result
