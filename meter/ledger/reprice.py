"""Re-pricing the ledger with the price book as it is now: what would change, and (``apply``) recording it.

Every call with usage is priced again from its stored token counts, the model it was priced
as (or the served model, for a call that was unknown then), its deployment type and region
and its start time, with today's tables and corrections (and the user's tables). A call whose
new total differs from its current one is a change; unknown that stays unknown is not;
unknown that became known is counted as such. ``apply`` adds the new cost rows under the
new table version (``current`` moves to them) and never touches the rows reported before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.ledger.connect import Connection, connect
from meter.ledger.dialect import day_range
from meter.ledger.errors import LedgerError
from meter.ledger.rows import cost_values, units_of, usage_of
from meter.ledger.schema import TOKEN_COLUMNS, UNIT_COLUMNS
from meter.pricing import PriceBook


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
    difference: Decimal = Decimal(0)
    """``after - before`` of the calls priced both times: a call unknown on one side has no difference."""


@dataclass
class Repricing:
    checked: int = 0
    changes: dict[tuple[str, str, str], Change] = field(default_factory=dict)
    table_version: str | None = None
    applied: int = 0

    @property
    def changed(self) -> int:
        return sum(c.calls for c in self.changes.values())


def reprice(ledger: str | Path, book: PriceBook, since: date | None = None, until: date | None = None,
            apply: bool = False) -> Repricing:
    """Price the calls from ``since`` to ``until`` (UTC days) again; ``apply`` records what changed."""
    db = connect(ledger, read_only=not apply)
    try:
        return _reprice(db, book, since, until, apply)
    except db.errors as exc:
        raise LedgerError(db.name, f"cannot be re-priced ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()


def _reprice(db: Connection, book: PriceBook, since: date | None, until: date | None, apply: bool) -> Repricing:
    d = db.dialect
    where, params = day_range(d, "c.started_at", since, until)
    where.insert(0, "(c.input_tokens IS NOT NULL OR " + " OR ".join(f"c.{u} IS NOT NULL" for u in UNIT_COLUMNS) + ")")
    join = "k.call_id = c.id" + ("" if d.name == "sqlite" else " AND k.call_started_at = c.started_at")
    sql = f"""SELECT c.id, c.started_at, c.usage_source, c.deployment, c.response_model, c.deployment_type, c.region,
                     {", ".join("c." + u for u in TOKEN_COLUMNS)}, {", ".join("c." + u for u in UNIT_COLUMNS)},
                     k.table_version, k.total, k.model, k.deployment_type, k.region
              FROM calls c LEFT JOIN costs k ON {join} AND k.current = {d.true}
              WHERE {" AND ".join(where)} ORDER BY c.started_at"""
    result = Repricing()
    new_rows: list[tuple[Any, ...]] = []
    superseded: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)
    for row in db.rows(sql, params):
        call_id, started, source, deployment, served, dtype, region = row[:7]
        tokens_end = 7 + len(TOKEN_COLUMNS)
        units = units_of(row[tokens_end:tokens_end + len(UNIT_COLUMNS)])
        usage = usage_of(row[7:tokens_end]) if row[7] is not None or units is None else None
        version, total, priced_model, priced_dtype, priced_region = row[tokens_end + len(UNIT_COLUMNS):]
        at = started if isinstance(started, datetime) else datetime.fromisoformat(started)
        cost = book.cost_of(usage, model=priced_model or served or deployment,
                            deployment_type=priced_dtype or dtype, region=priced_region or region, at=at,
                            estimated=source == "estimated", units=None if units is None else units.price_units())
        result.checked += 1
        before = None if total is None else Decimal(total)
        if cost.total == before and version is not None:
            continue
        if cost.total is None and before is None:
            continue  # unknown stays unknown
        key = (cost.model or priced_model or served or "?", cost.deployment_type or dtype or "?",
               at.astimezone(UTC).date().isoformat())
        change = result.changes.setdefault(key, Change())
        change.calls += 1
        change.before += before or 0
        change.after += cost.total or 0
        change.newly_priced += before is None
        change.now_unknown += cost.total is None
        if before is not None and cost.total is not None:
            change.difference += cost.total - before
        result.table_version = cost.table_version
        if cost.table_version == version:
            continue  # same version, different total: only possible after a table edit without a version
        values = cost_values(call_id, cost, now, reported=False)
        new_rows.append(values if d.name == "sqlite" else (started, *values))
        if version is not None:
            superseded.append((call_id, version))
    if apply and new_rows:
        m = d.mark
        columns = db.cost_columns
        with db.transaction():
            db.many(f"UPDATE costs SET current = {d.false} WHERE call_id = {m} AND table_version = {m}", superseded)
            # A row of this version may be there already (priced so once, then moved off): it is kept, and
            # made current again, never overwritten.
            db.many(f"INSERT INTO costs ({', '.join(columns)}) VALUES ({', '.join([m] * len(columns))}) "
                    "ON CONFLICT DO NOTHING", new_rows)
            db.many(f"UPDATE costs SET current = {d.true} WHERE call_id = {m} AND table_version = {m}",
                    [(row[columns.index("call_id")], row[columns.index("table_version")]) for row in new_rows])
        result.applied = len(new_rows)
    return result
