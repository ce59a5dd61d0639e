"""What Azure billed, from export files: per day x resource x model x class, with commitments apart.

Files in one folder are the parts of one export run; a run's time is its newest file's. When
runs cover the same (day, resource), the latest run's rows win and the earlier ones are set
aside (Azure re-runs an export for a day to revise it); each supersession is reported.

Meter names are read by ``meter.pricing.meters.parse_meter``, the parser the Retail import uses:
model, class, deployment type (Batch is one). A cell's quantity is in its class's unit
(``PriceKind.unit``): tokens, the built-in tools' calls and sessions (model ``built-in-tools``),
seconds of audio (whisper's rows count hours: ``1 Hour`` x 3,600), characters, images (per 100
images, a quantity of images under the file's reading). A name it cannot read is listed as
unknown with its rows and cost, never guessed. PTU and reservation rows (hourly or monthly
units, ``PricingModel`` Reservation / SavingsPlan, a ``Purchase`` charge) are commitments:
reported apart, never compared per token; a meter the parser reads is never one (whisper's
``1 Hour`` is hours of audio, not of a deployment). Rows of other Cognitive Services on the same resources
(Language, Speech, Vision) are kept apart too (``others``), outside the Azure OpenAI totals.

When an export's rows carry a deployment tag (``exports.deployment_tag``), their resource is split
by it: the cells of those rows are the resource ``name/deployment`` (``aoai-test/chat-prod``), and
``split`` tells the ledger side which calls to put there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from meter.pricing.meters import MeterKey, UnmappedMeter, normalise, parse_meter
from meter.pricing.model import PRICE_KINDS
from meter.pricing.retail import unit_size
from meter.reconcile.exports import ExportFile, Sum, tokens

CellKey = tuple[date, str, str, str]
"""(UTC day, resource name, model id, token class)."""

_COMMITMENT_MODELS = frozenset({"reservation", "savingsplan", "savings plan", "commitment-based", "commitment"})


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def token_class(kind: str, deployment_type: str) -> str:
    """The class a cell compares: the price kind, with Batch, Priority and Flex apart (``input (batch)``):
    they are billed at their own prices (a call served at a tier is priced, and metered, at that tier's
    deployment type), and batch jobs never pass through meter."""
    lowered = deployment_type.lower()
    for mode in ("batch", "priority", "flex"):
        if mode in lowered:
            return f"{kind} ({mode})"
    return kind


def resource_name(resource_id: str) -> str:
    """The account name at the end of an ARM id (``.../accounts/my-aoai`` -> ``my-aoai``), lower case.

    The export is input: control characters (a terminal escape, say) become ``?`` here, before
    the name reaches a table, a CSV cell or a log."""
    return _CONTROL.sub("?", resource_id.rstrip("/").rsplit("/", 1)[-1].strip().lower())


_SECONDS_KINDS = frozenset(kind.name for kind in PRICE_KINDS if kind.unit == "seconds")


@dataclass
class BilledCell:
    tokens: Decimal = Decimal(0)
    """The quantity billed, in the class's unit (tokens, calls, sessions, seconds, characters, images)."""
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
    currency: str = "USD"


@dataclass
class OtherService:
    """Rows of another Cognitive Services meter (Language, Speech, Vision) on a resource: not Azure OpenAI."""

    resource: str
    service: str
    meter: str
    unit: str
    quantity: Decimal = Decimal(0)
    cost: Decimal | None = None
    currency: str = "USD"
    rows: int = 0
    days: set[date] = field(default_factory=set)


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
    resources: set[str] = field(default_factory=set)


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
    """The resources of the Azure OpenAI rows (``name/deployment`` where a deployment tag splits one)."""
    days: set[date] = field(default_factory=set)
    others: dict[tuple[str, str, str], OtherService] = field(default_factory=dict)
    """(resource, service, meter) -> the other service's rows."""
    resource_ids: dict[str, str] = field(default_factory=dict)
    """Resource name -> its ARM id as the export writes it (the first seen)."""
    split: dict[str, set[str]] = field(default_factory=dict)
    """Resource name -> the deployments its rows are tagged with."""

    @property
    def accounts(self) -> set[str]:
        """The resources billed, without their deployment split."""
        return {account(r) for r in self.resources}


def account(resource: str) -> str:
    """``aoai-test/chat-prod`` -> ``aoai-test``: the resource of a cell split by deployment."""
    return resource.split("/", 1)[0]


def _is_commitment(meter: str, pricing_model: str, unit: str) -> bool:
    """PTU and reservations: by the pricing model, a provisioned meter, or a unit of time (for a meter that is not a
    model's: ``_add`` reads those first)."""
    name = normalise(meter)
    return (pricing_model.strip().lower() in _COMMITMENT_MODELS or "provisioned" in name or " ptu" in f" {name}"
            or any(word in unit.lower() for word in ("hour", "month", "day")))


def _quantity(acc: Sum, reading: str, key: MeterKey) -> Decimal:
    """A sum's quantity in its class's unit: seconds for audio billed by time (the unit of measure says how long
    one is, ``1 Hour`` when it says nothing), else what the file's reading gives (tokens, calls, images)."""
    quantity = tokens(acc, reading)
    if key.kind in _SECONDS_KINDS:
        size = unit_size(acc.unit or "1 Hour")
        if size is not None and size[1] == "seconds":
            quantity *= size[0]
    return quantity


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
        covered = {(key[0], resource_name(key[1])) for f in members for key in (*f.sums, *f.others)}
        for key in sorted(covered):
            if key in owner:
                out.superseded.append(Superseded(key[0], key[1], folder, owner[key]))
            owner[key] = folder
    for folder, members in runs:
        for f in members:
            currency = f.currency or "USD"
            for (day, resource_id, meter, pricing_model, deployment), acc in f.sums.items():
                resource = resource_name(resource_id)
                if owner[(day, resource)] != folder or not _in_range(day, since, until):
                    continue
                out.resource_ids.setdefault(resource, resource_id)
                if deployment:
                    out.split.setdefault(resource, set()).add(deployment)
                    resource = f"{resource}/{deployment}"
                _add(out, f, day, resource, meter, pricing_model, acc, currency)
            for (day, resource_id, meter, _, _), acc in f.others.items():
                resource = resource_name(resource_id)
                if owner[(day, resource)] != folder or not _in_range(day, since, until):
                    continue
                other = out.others.setdefault((resource, acc.service, meter),
                                              OtherService(resource, acc.service, meter, acc.unit, currency=currency))
                other.quantity += acc.quantity
                other.rows += acc.rows
                other.days.add(day)
                if acc.cost is not None:
                    other.cost = acc.cost if other.cost is None else other.cost + acc.cost
    out.superseded = [s for s in out.superseded if owner[(s.day, s.resource)] == s.kept]
    return out


def _in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day < until)


def _add(out: Billed, f: ExportFile, day: date, resource: str, meter: str, pricing_model: str, acc: Sum,
         currency: str) -> None:
    out.resources.add(resource)
    out.days.add(day)
    key: MeterKey | None = None
    reason = ""
    if pricing_model.strip().lower() not in _COMMITMENT_MODELS:
        try:
            key = parse_meter(meter)
        except UnmappedMeter as exc:
            reason = str(exc)
    if key is None and _is_commitment(meter, pricing_model, acc.unit):
        out.commitments.append(Commitment(day, resource, meter, pricing_model, acc.unit, acc.quantity, acc.cost,
                                          currency))
        return
    if key is None:
        unknown = out.unknown.setdefault(meter, UnknownMeter(meter, reason, where=f"{f.path}, line "
                                                                                  f"{acc.first_line}"))
        unknown.resources.add(resource)
        unknown.rows += acc.rows
        unknown.quantity += acc.quantity
        unknown.days.add(day)
        if acc.cost is not None:
            unknown.cost = acc.cost if unknown.cost is None else unknown.cost + acc.cost
        return
    cell = out.cells.setdefault((day, resource, key.model, token_class(key.kind, key.deployment_type)),
                                BilledCell())
    cell.tokens += _quantity(acc, f.reading, key)
    if acc.cost is not None:
        cell.cost = acc.cost if cell.cost is None else cell.cost + acc.cost
    cell.deployment_types.add(key.deployment_type)
    cell.meters.add(meter)
