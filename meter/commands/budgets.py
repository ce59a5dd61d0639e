"""``meter budgets status``: each budget in its current period, from any shell.

A Meter's budgets live in its process, or, with a ledger, in the ledger's database, shared by every
process (``meter.budget_store``); a shell has no process to ask. So the command reads the budgets file
and, with ``--ledger``, the ledger the Meters write:

- **the shared store**, when the database has its tables (``budget_periods``, ``budget_leases``): what
  the Meters' heartbeats wrote, every process's: spent, calls, estimated and unpriced calls, the alerts
  fired and the calls refused of each budget's period (a rolling window: the sum of its time buckets in
  the window), ``reserved`` the calls in flight of the live leases (as their last heartbeat said);
- else **the calls table**: the spend of each budget in its period is the cost of the ledger's calls
  charged to it. A call's ``budgets`` column (the budgets it was charged to) says which; a call without
  one (written by a meter without budgets, or before the column existed) is matched against each budget
  by its tags, deployment and requested model, as a Meter matches it. Costs are the ledger's current
  ones; an error the service answered counts 0 (Azure bills none); a call without a cost (unpriced, or
  no usage) is counted apart (``unpriced_calls``): the spend is at least what is shown. A call meter
  refused (its own 429, ``budget_exceeded``) is charged nothing and counted as refused by each hard
  budget it matches. Calls in flight are not in a ledger: ``reserved`` is 0 there.

The output says which (``source`` in JSON). Without ``--ledger`` the spend is 0: the command then shows
the limits, periods and reset times.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.budgets import Budget, BudgetFileError, BudgetLedger, BudgetStatus, load_budgets, period_window
from meter.budgets.refusal import CODE
from meter.budgets.show import status_json, status_lines
from meter.textout import say_error

DEFAULT_FILE = "budgets.toml"
REFUSED = CODE
"""The error code of meter's own 429 (``meter.budgets.refusal``): a refused call, charged to no budget."""


def add_commands(commands: Any) -> None:
    """Register ``meter budgets status``."""
    parser = commands.add_parser("budgets", help="spend limits (budgets.toml): their status")
    sub = parser.add_subparsers(dest="budgets_command", metavar="COMMAND")
    status = sub.add_parser("status", help="each budget in its current period: spent, reserved, limit, forecast")
    status.add_argument("--budgets", default=DEFAULT_FILE, metavar="FILE",
                        help="the budgets file (default %(default)s)")
    status.add_argument("--ledger", default=None, metavar="LEDGER",
                        help="the ledger the Meters write, a SQLite file or a postgresql:// URL: the shared budget "
                             "store there (every process's), or, without its tables, the cost of the calls there "
                             "(without it the spend is 0)")
    status.add_argument("--format", choices=("text", "json"), default="text", help="output (default text)")
    status.add_argument("--at", type=_instant, default=None, metavar="TIME",
                        help="the instant to show, ISO 8601 (default now; a time without a zone is UTC)")
    status.set_defaults(handler=run_status)
    parser.set_defaults(handler=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (2026-12-07T12:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_status(args: argparse.Namespace) -> int:
    try:
        budgets = load_budgets(Path(args.budgets))
    except (BudgetFileError, OSError, ValueError) as exc:
        say_error(exc)
        return 1
    at = args.at or datetime.now(UTC)
    source = NONE
    if args.ledger:
        from meter.ledger import LedgerError

        try:
            statuses, source = read_status(budgets, args.ledger, at)
        except (LedgerError, ValueError) as exc:
            say_error(exc)
            return 1
    else:
        statuses = BudgetLedger(budgets).status(at)
    if args.format == "json":
        print(json.dumps([{**status_json(s), "source": source} for s in statuses], indent=2))
    else:
        where = {SHARED: f"the shared budget store in the ledger {args.ledger} (budget_periods, every process)",
                 CALLS: f"the calls in the ledger {args.ledger} (it has no shared budget tables)",
                 NONE: "no ledger (pass --ledger for the spend)"}[source]
        print(f"budgets of {args.budgets} at {at:%Y-%m-%dT%H:%M:%SZ}, spend from {where}")
        for line in status_lines(statuses):
            print(line)
    return 0


SHARED, CALLS, NONE = "shared store", "calls table", "none"
"""Where the numbers come from (``source`` in JSON)."""


def read_status(budgets: Sequence[Budget], ledger: str | Path, at: datetime) -> tuple[list[BudgetStatus], str]:
    """Each budget's status at ``at`` and where it comes from: the shared store when the ledger has its tables,
    else the calls table (see the module docstring)."""
    from meter.ledger.connect import connect

    db = connect(ledger)  # a missing ledger, or not one, is a LedgerError naming it
    try:
        try:
            tables = _tables(db)
        except db.errors as exc:
            from meter.ledger import LedgerError

            raise LedgerError(db.name, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    if {"budget_periods", "budget_leases"} <= tables:
        return shared_status(budgets, ledger, at), SHARED
    return ledger_status(budgets, ledger, at), CALLS


def shared_status(budgets: Sequence[Budget], ledger: str | Path, at: datetime) -> list[BudgetStatus]:
    """Each budget's status at ``at`` from the shared store's tables (read only: nothing is made or taken)."""
    from meter.budget_store import SqlSlots
    from meter.budgets.shared import SharedBudgets

    slots = SqlSlots(ledger, create=False)
    try:
        return SharedBudgets(budgets, slots, clock=lambda: at).status(at, strict=True, in_flight=True)
    except Exception as exc:
        from meter.ledger import LedgerError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LedgerError(slots.name, f"cannot read its budgets ({first})") from None
    finally:
        slots.close()


@dataclass
class _Tally:
    spent: Decimal = Decimal(0)
    calls: int = 0
    unpriced: int = 0
    refused: int = 0
    first: datetime | None = None


def ledger_status(budgets: Sequence[Budget], ledger: str | Path, at: datetime) -> list[BudgetStatus]:
    """Each budget's status at ``at`` from the calls in ``ledger`` (see the module docstring)."""
    from meter.ledger.connect import connect
    from meter.ledger.rows import join_money

    at = at.astimezone(UTC)
    windows = [period_window(b.window, at) for b in budgets]
    tallies = [_Tally() for _ in budgets]
    if not budgets:
        return []
    since = min(start for start, _ in windows)
    db = connect(ledger)
    try:
        try:
            has_budgets = "budgets" in _columns(db)
            mark = db.dialect.mark
            bound: Any = since.isoformat() if db.dialect.name == "sqlite" else since
            sql = (f"SELECT c.started_at, c.deployment, c.request_model, c.attributes, c.outcome, c.error_code, "
                   f"{'c.budgets' if has_budgets else 'NULL'}, k.total_nano, k.total_atto FROM calls c "
                   f"LEFT JOIN costs k ON k.call_id = c.id AND k.current = {db.dialect.true} "
                   f"WHERE c.started_at >= {mark}")
            for started, deployment, model, attributes, outcome, error, charged, nano, atto in db.stream(sql, [bound]):
                when = _when(started)
                if when >= at:
                    continue
                tags = _tags(attributes)
                names = _charged(charged)
                cost = Decimal(0) if outcome == "http_error" else (
                    join_money(int(nano), int(atto or 0)) if nano is not None else None)
                for budget, (start, end), tally in zip(budgets, windows, tallies, strict=True):
                    if not start <= when < end:
                        continue
                    if names is not None:
                        if budget.name not in names:
                            continue
                    elif not budget.matches(tags, deployment, model):
                        continue
                    if error == REFUSED:  # meter's own 429: charged nothing, counted for the hard budgets
                        tally.refused += int(budget.hard)
                        continue
                    tally.calls += 1
                    tally.first = when if tally.first is None or when < tally.first else tally.first
                    if cost is None:
                        tally.unpriced += 1
                    else:
                        tally.spent += cost
        except db.errors as exc:
            from meter.ledger import LedgerError

            raise LedgerError(db.name, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    out = []
    for budget, (start, end), tally in zip(budgets, windows, tallies, strict=True):
        rolling = budget.window.length
        if rolling is not None:
            reset = tally.first + rolling if tally.first is not None else at
            forecast = tally.spent
        else:
            reset = end
            elapsed, remaining = at - start, end - at
            forecast = tally.spent
            if elapsed > timedelta(0) and remaining > timedelta(0):
                forecast += tally.spent * Decimal(remaining // timedelta(microseconds=1)) / Decimal(
                    elapsed // timedelta(microseconds=1))
        fired = tuple(a for a in budget.alert_at if tally.spent >= a * budget.limit_usd)
        out.append(BudgetStatus(name=budget.name, enforce=budget.enforce, period=budget.period, period_start=start,
                                period_end=end, reset_at=reset, spent=tally.spent, reserved=Decimal(0),
                                limit=budget.limit_usd, forecast=forecast, calls=tally.calls,
                                unpriced_calls=tally.unpriced, estimated_calls=0, refused_calls=tally.refused,
                                alerts_fired=fired))
    return out


def _tables(db: Any) -> set[str]:
    if db.dialect.name == "sqlite":
        return {str(row[0]) for row in db.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {str(row[0]) for row in db.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}


def _columns(db: Any) -> set[str]:
    if db.dialect.name == "sqlite":
        return {str(row[1]) for row in db.rows("PRAGMA table_info(calls)")}
    return {str(row[0]) for row in db.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
        "AND table_schema = current_schema()")}


def _when(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _tags(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _charged(value: Any) -> frozenset[str] | None:
    """The budgets a ledger row names (``None``: the row names none; match it instead)."""
    if value is None or value == "":
        return None
    try:
        names = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return frozenset(str(n) for n in names) if isinstance(names, list) else None
