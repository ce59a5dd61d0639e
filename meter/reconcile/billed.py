"""What Azure billed, from export files: per day x resource x model x token class, with commitments apart.

Files in one folder are the parts of one export run; a run's time is its newest file's. When
runs cover the same (day, resource), the latest run's rows win and the earlier ones are set
aside (Azure re-runs an export for a day to revise it); each supersession is reported.

Meter names are read by ``meter.pricing.meters.parse_meter``, the parser the Retail import uses:
model, token class, deployment type (Batch is one). A name it cannot read is listed as
unknown with its rows and cost, never guessed. PTU and reservation rows (hourly or monthly
units, ``PricingModel`` Reservation / SavingsPlan, a ``Purchase`` charge) are commitments:
reported apart, never compared per token.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from meter.pricing.meters import UnmappedMeter, normalise, parse_meter
from meter.reconcile.exports import ExportFile, Sum, tokens

CellKey = tuple[date, str, str, str]
"""(UTC day, resource name, model id, token class)."""

_COMMITMENT_MODELS = frozenset({"reservation", "savingsplan", "savings plan", "commitment-based", "commitment"})


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def token_class(kind: str, deployment_type: str) -> str:
    """The class a cell compares: the price kind, with Batch and Priority apart (``input (batch)``): they
    are billed at their own prices, and batch jobs never pass through meter."""
    lowered = deployment_type.lower()
    return kind + (" (batch)" if "batch" in lowered else " (priority)" if "priority" in lowered else "")


def resource_name(resource_id: str) -> str:
    """The account name at the end of an ARM id (``.../accounts/my-aoai`` -> ``my-aoai``), lower case.

    The export is input: control characters (a terminal escape, say) become ``?`` here, before
    the name reaches a table, a CSV cell or a log."""
    return _CONTROL.sub("?", resource_id.rstrip("/").rsplit("/", 1)[-1].strip().lower())


@dataclass
class BilledCell:
    tokens: Decimal = Decimal(0)
    cost: Decimal | None = None
    deployment_types: set[str] = field(default_factory=set)
    meters: set[str] = field(default_factory=set)


@dataclass
class Commitment:
    day: date
    resource: str
    meter: str
    pricing_model: str
    unit: str
    quantity: Decimal
    cost: Decimal | None


@dataclass
class UnknownMeter:
    meter: str
    reason: str
    rows: int = 0
    quantity: Decimal = Decimal(0)
    cost: Decimal | None = None
    days: set[date] = field(default_factory=set)
    where: str = ""
    """``file, line N`` of its first row."""


@dataclass
class Superseded:
    day: date
    resource: str
    kept: str
    """The folder (run) whose rows count."""
    dropped: str


@dataclass
class Billed:
    cells: dict[CellKey, BilledCell] = field(default_factory=dict)
    commitments: list[Commitment] = field(default_factory=list)
    unknown: dict[str, UnknownMeter] = field(default_factory=dict)
    files: list[ExportFile] = field(default_factory=list)
    superseded: list[Superseded] = field(default_factory=list)
    costs_compared: bool = True
    why_not_costs: str = ""
    resources: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)


def _is_commitment(meter: str, pricing_model: str, unit: str) -> bool:
    name = normalise(meter)
    return (pricing_model.strip().lower() in _COMMITMENT_MODELS or "provisioned" in name or " ptu" in f" {name}"
            or any(word in unit.lower() for word in ("hour", "month", "day")))


def _runs(files: list[ExportFile]) -> list[tuple[str, list[ExportFile]]]:
    """Files grouped by folder (one export run each), oldest run first."""
    groups: dict[str, list[ExportFile]] = {}
    for f in files:
        groups.setdefault(str(Path(f.path).resolve().parent), []).append(f)
    order = list(groups)

    def newest(folder: str) -> tuple[float, int]:
        return max(os.stat(f.path).st_mtime for f in groups[folder]), order.index(folder)

    return [(folder, groups[folder]) for folder in sorted(groups, key=newest)]


def combine(files: list[ExportFile], since: date | None = None, until: date | None = None) -> Billed:
    """The bill from the files read (``exports.read_file``), days from ``since`` to ``until`` (exclusive)."""
    out = Billed(files=files)
    for f in files:
        if not f.cost_in:
            out.costs_compared, out.why_not_costs = False, f"{f.path} has no cost columns (a usage-only export)"
        elif f.currency and f.currency != "USD":
            out.costs_compared, out.why_not_costs = False, (f"{f.path} is billed in {f.currency} and has no "
                                                            "costInUsd: meter's prices are USD")
    owner: dict[tuple[date, str], str] = {}
    runs = _runs(files)
    for folder, members in runs:  # oldest first: a later run takes a (day, resource) over
        covered = {(day, resource_name(resource_id)) for f in members for (day, resource_id, _, _) in f.sums}
        for key in sorted(covered):
            if key in owner:
                out.superseded.append(Superseded(key[0], key[1], folder, owner[key]))
            owner[key] = folder
    for folder, members in runs:
        for f in members:
            for (day, resource_id, meter, pricing_model), acc in f.sums.items():
                resource = resource_name(resource_id)
                if owner[(day, resource)] != folder:
                    continue
                if (since is not None and day < since) or (until is not None and day >= until):
                    continue
                _add(out, f, day, resource, meter, pricing_model, acc)
    out.superseded = [s for s in out.superseded if owner[(s.day, s.resource)] == s.kept]
    return out


def _add(out: Billed, f: ExportFile, day: date, resource: str, meter: str, pricing_model: str, acc: Sum) -> None:
    out.resources.add(resource)
    out.days.add(day)
    if _is_commitment(meter, pricing_model, acc.unit):
        out.commitments.append(Commitment(day, resource, meter, pricing_model, acc.unit, acc.quantity, acc.cost))
        return
    try:
        key = parse_meter(meter)
    except UnmappedMeter as exc:
        unknown = out.unknown.setdefault(meter, UnknownMeter(meter, str(exc), where=f"{f.path}, line "
                                                                                    f"{acc.first_line}"))
        unknown.rows += acc.rows
        unknown.quantity += acc.quantity
        unknown.days.add(day)
        if acc.cost is not None:
            unknown.cost = acc.cost if unknown.cost is None else unknown.cost + acc.cost
        return
    cell = out.cells.setdefault((day, resource, key.model, token_class(key.kind, key.deployment_type)),
                                BilledCell())
    cell.tokens += tokens(acc, f.reading)
    if acc.cost is not None:
        cell.cost = acc.cost if cell.cost is None else cell.cost + acc.cost
    cell.deployment_types.add(key.deployment_type)
    cell.meters.add(meter)
