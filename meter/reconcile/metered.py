"""What meter metered, from the ledger: per UTC day x resource x model x token class, as the bill counts.

Each call's usage is split into the price classes the bill uses (``meter.pricing.usage.token_buckets``:
text input after cached and cache-write tokens, output with reasoning inside, audio apart),
and its cost per class is the amount its current cost row recorded. The resource is the
host prefix of the call's server (``my-aoai.openai.azure.com`` -> ``my-aoai``; a loopback
address stays whole), unless ``resources`` maps it to an export's resource. Calls on
provisioned (PTU) deployments are set apart: their bill is per hour, not per token. Kept per
cell, for the explanations: estimated tokens, tokens of failed calls, tokens of the calls
within ``window`` of either midnight, the unit prices and price rows used. Where the export splits
a resource by deployment tags (``split``), a call to a tagged deployment is the resource
``name/deployment``, as the bill's cells are.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.ledger.connect import connect
from meter.ledger.dialect import day_range
from meter.ledger.errors import LedgerError
from meter.ledger.rows import usage_of
from meter.ledger.schema import TOKEN_COLUMNS
from meter.pricing.usage import token_buckets
from meter.reconcile.billed import CellKey, token_class


def ledger_resource(server_address: str) -> str:
    """The resource a call went to, by its host: the first label of a name, a whole IP address or localhost."""
    host = server_address.strip().lower()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return host if host == "localhost" else host.split(".", 1)[0]


@dataclass
class MeteredCell:
    tokens: int = 0
    estimated_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced_tokens: int = 0
    failed_tokens: int = 0
    calls: int = 0
    late_tokens: int = 0
    """Tokens of calls started within the window before the day's end."""
    early_tokens: int = 0
    """Tokens of calls started within the window after the day's start."""
    deployment_types: set[str] = field(default_factory=set)
    unit_prices: set[Decimal] = field(default_factory=set)
    rows: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)


@dataclass
class ProvisionedUse:
    calls: int = 0
    tokens: int = 0
    hours: set[int] = field(default_factory=set)


@dataclass
class Metered:
    cells: dict[CellKey, MeteredCell] = field(default_factory=dict)
    provisioned: dict[tuple[date, str], ProvisionedUse] = field(default_factory=dict)
    resources: set[str] = field(default_factory=set)
    calls: int = 0
    without_usage: dict[tuple[date, str], int] = field(default_factory=dict)
    """Calls the ledger has with no usage (failed, refused, cut off before any), per (day, resource)."""
    hosts: dict[str, int] = field(default_factory=dict)
    """The server addresses the calls went to, with their calls (for saying what did not match)."""


def read_ledger(ledger: str | Path, resources: dict[str, str], window: timedelta, since: date | None = None,
                until: date | None = None, split: dict[str, set[str]] | None = None) -> Metered:
    """The ledger's calls, from ``since`` to ``until`` (UTC days), summed per cell; ``split``: resource -> the
    deployments the export bills apart (``Billed.split``)."""
    db = connect(ledger)
    d = db.dialect
    where, params = day_range(d, "c.started_at", since, until)
    join = "k.call_id = c.id" + ("" if d.name == "sqlite" else " AND k.call_started_at = c.started_at")
    sql = f"""SELECT c.started_at, c.server_address, c.deployment_type, c.outcome, c.usage_source, c.response_model,
                     c.deployment, {", ".join("c." + u for u in TOKEN_COLUMNS)}, k.model, k.deployment_type, k.region,
                     k.amounts, k.unit_prices, k.row_ids, k.total
              FROM calls c LEFT JOIN costs k ON {join} AND k.current = {d.true}
              {"WHERE " + " AND ".join(where) if where else ""}"""
    out = Metered()
    try:
        for row in db.stream(sql, params):
            _add(out, row, resources, window, split or {})
    except db.errors as exc:
        raise LedgerError(db.name, f"cannot be read ({str(exc).strip().splitlines()[0]})") from None
    finally:
        db.close()
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _add(out: Metered, row: tuple[Any, ...], resources: dict[str, str], window: timedelta,
         split: dict[str, set[str]]) -> None:
    started, server, call_dtype, outcome, source, served, deployment = row[:7]
    at = started if isinstance(started, datetime) else datetime.fromisoformat(started)
    at = at.astimezone(UTC)
    day = at.date()
    host = ledger_resource(server or "")
    out.hosts[server or ""] = out.hosts.get(server or "", 0) + 1
    resource = resources.get(host, resources.get((server or "").lower(), host))
    if resource in split and (deployment or "").lower() in split[resource]:
        resource = f"{resource}/{deployment.lower()}"
    out.resources.add(resource)
    out.calls += 1
    if row[7] is None:  # input_tokens: no usage
        out.without_usage[(day, resource)] = out.without_usage.get((day, resource), 0) + 1
        return
    usage = usage_of(row[7:7 + len(TOKEN_COLUMNS)])
    model, dtype, region, amounts, unit_prices, row_ids, total = row[7 + len(TOKEN_COLUMNS):]
    dtype = dtype or call_dtype or ""
    buckets = token_buckets(usage)
    if "provisioned" in dtype.lower():
        use = out.provisioned.setdefault((day, resource), ProvisionedUse())
        use.calls += 1
        use.tokens += sum(buckets.values())
        use.hours.add(at.hour)
        return
    amounts, unit_prices, rows = _json(amounts), _json(unit_prices), _json(row_ids) if row_ids else []
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    late = at >= midnight + timedelta(days=1) - window
    early = at < midnight + window
    for kind, count in buckets.items():
        cell = out.cells.setdefault((day, resource, model or served or deployment or "?", token_class(kind, dtype)),
                                    MeteredCell())
        cell.tokens += count
        cell.calls += 1
        if source == "estimated":
            cell.estimated_tokens += count
        if outcome != "ok":
            cell.failed_tokens += count
        if late:
            cell.late_tokens += count
        if early:
            cell.early_tokens += count
        amount = amounts.get(kind)  # the price kind, without the class's (batch) / (priority)
        if total is None or amount is None:
            cell.unpriced_tokens += count
        else:
            cell.cost += Decimal(amount)
        if dtype:
            cell.deployment_types.add(dtype)
        if kind in unit_prices:
            cell.unit_prices.add(Decimal(unit_prices[kind]))
        if region:
            cell.regions.add(region)
        cell.rows.update(rows)
