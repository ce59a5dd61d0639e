"""What meter metered, from the ledger: per UTC day x resource x model x class, as the bill counts.

Each call's usage is split into the price classes the bill uses (``meter.pricing.usage.token_buckets``:
text input after cached and cache-write tokens, output with reasoning inside, audio apart, and the
built-in tool calls), and its cost per class is the amount its current cost row recorded for that
class (a call whose cost is partly unknown keeps the amounts it has). A cell counts what its class is
billed in (``meter.pricing.model.PriceKind.unit``): tokens, tool calls, code interpreter sessions,
seconds of audio, characters, images. As Azure bills them: the built-in tools' calls under the model
``built-in-tools`` at the fee's deployment type (a tool call on a Priority or Batch call pays the
Global fee), a call billed by its units (whisper's seconds, dall-e-3's images, tts-1's characters:
the ledger's units columns) at its units' classes, a model's output that one meter bills with another
kind under that kind (``meter.pricing.meters.billed_kind``: gpt-image-1's output is image output), a
Batch output file at the Batch type it was priced at (``input (batch)``). The resource is the
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
from meter.ledger.rows import units_of, usage_of
from meter.ledger.schema import TOKEN_COLUMNS, UNIT_COLUMNS
from meter.pricing.book import fee_deployment_type
from meter.pricing.meters import billed_kind
from meter.pricing.model import ANY_MODEL_KINDS, PRICE_KINDS, TOOLS_MODEL
from meter.pricing.usage import token_buckets
from meter.reconcile.billed import CellKey, token_class

PER_UNIT = {kind.name: kind.unit for kind in PRICE_KINDS}
"""Price kind -> what its class counts (``tokens``, ``calls``, ``sessions``, ``seconds``, ``characters``,
``images``)."""


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
    """One class's quantity (``tokens``: in the class's unit, tokens or calls, sessions, seconds, characters,
    images) and cost; the other counts are of the same unit."""

    tokens: Decimal = Decimal(0)
    estimated_tokens: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    unpriced_tokens: Decimal = Decimal(0)
    failed_tokens: Decimal = Decimal(0)
    calls: int = 0
    late_tokens: Decimal = Decimal(0)
    """Tokens of calls started within the window before the day's end."""
    early_tokens: Decimal = Decimal(0)
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
                     c.deployment, {", ".join("c." + u for u in TOKEN_COLUMNS)},
                     {", ".join("c." + u for u in UNIT_COLUMNS)}, k.model, k.deployment_type, k.region,
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
    tokens_end = 7 + len(TOKEN_COLUMNS)
    units = units_of(row[tokens_end:tokens_end + len(UNIT_COLUMNS)])
    if row[7] is None and units is None:  # input_tokens: no usage, and no units either
        out.without_usage[(day, resource)] = out.without_usage.get((day, resource), 0) + 1
        return
    model, dtype, region, amounts, unit_prices, row_ids, _total = row[tokens_end + len(UNIT_COLUMNS):]
    dtype = dtype or call_dtype or ""
    quantities: dict[str, Decimal] = {}
    if row[7] is not None:
        quantities.update((kind, Decimal(n)) for kind, n in token_buckets(usage_of(row[7:tokens_end])).items())
    if units is not None:
        quantities.update((kind, Decimal(str(n))) for kind, n in units.price_units().items())
    if "provisioned" in dtype.lower():
        use = out.provisioned.setdefault((day, resource), ProvisionedUse())
        use.calls += 1
        use.tokens += int(sum(n for kind, n in quantities.items() if PER_UNIT[kind] == "tokens"))
        use.hours.add(at.hour)
        return
    amounts, unit_prices, rows = _json(amounts), _json(unit_prices), _json(row_ids) if row_ids else []
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    late = at >= midnight + timedelta(days=1) - window
    early = at < midnight + window
    called = model or served or deployment or "?"
    for kind, count in quantities.items():
        if kind in ANY_MODEL_KINDS:  # a built-in tool's fee: billed for every model under built-in-tools
            key = (day, resource, TOOLS_MODEL, token_class(kind, fee_deployment_type(dtype)))
        else:
            key = (day, resource, called, token_class(billed_kind(called, kind), dtype))
        cell = out.cells.setdefault(key, MeteredCell())
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
        if amount is None:  # no price for this class (a call partly priced keeps the amounts it has)
            cell.unpriced_tokens += count
        else:
            cell.cost += Decimal(amount)
        if dtype:
            cell.deployment_types.add(dtype)
        if kind in unit_prices:
            cell.unit_prices.add(Decimal(unit_prices[kind]))
        if region:
            cell.regions.add(region)
        own = [r for r in rows if r.endswith(f"/{kind}") or f"/{kind}#" in r]  # the class's own rows, if named
        cell.rows.update(own or rows)
