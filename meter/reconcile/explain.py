"""Billed against metered, cell by cell, and each difference explained where the data allows. Pure: no I/O.

A cell is (UTC day, resource, model, class); its quantities are in the class's unit (``Line.unit``:
tokens, or the built-in tools' calls and sessions, seconds of audio, characters, images), and every
rule below holds for each unit as for tokens. For each, in this order:

1. **timing**: a difference on day D that the next day cancels exactly (D short by x, D+1 over
   by x, or the reverse) while the ledger has at least x tokens of calls within the window of
   that midnight: the call was billed on the other side of it;
2. **unmetered traffic**: billed tokens above the metered ones (clients not wrapped, other
   apps, the playground, batch jobs);
3. **metered but not billed**: metered tokens above the billed ones; failed calls explain up
   to their tokens, a resource the export does not cover explains all of it, the rest is
   unexplained;
4. **price mismatch**: on the tokens both sides have, the export's price per token against
   meter's (more than ``tolerance`` apart): the table row meter used, the deployment types
   each side saw, and the ``[[price]]`` entry that would make them agree;
5. what is left over after those (below ``tolerance``) is **rounding**.

A class no Azure meter bills (``meter.pricing.meters.NO_AZURE_METER``: web search) is never in an
export: what meter metered of it is **unpriced** (listed, counted as unpriced in the metered total,
never unexplained and never 0).

Commitments (PTU, reservations) and unknown meters come from the bill as they are; the
ledger's PTU calls give their utilisation. ``unexplained`` is the money (or, when costs
cannot be compared, the tokens) no explanation accounts for, and ``unknown`` meters' cost.

One set of totals: the roll-ups are sums of the lines, ``billed_total`` is the lines' billed cost
plus the unknown meters', ``unexplained`` the lines' unexplained cost plus the unknown meters'.
Commitments and other services are totalled apart, per currency and (commitments) per unit. An
amount meter cannot price is never counted as 0: each total carries the count of what it lacks.
``coverage`` is, per resource and month, the share of the billed cost whose tokens meter metered
(1 - unmetered / billed; tokens when costs are not compared).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from meter.pricing.meters import NO_AZURE_METER
from meter.pricing.model import PRICE_KINDS
from meter.reconcile.billed import Billed, BilledCell, CellKey, Commitment, OtherService, account
from meter.reconcile.metered import Metered, MeteredCell

MILLION = Decimal(1_000_000)
_KINDS = {kind.name: kind for kind in PRICE_KINDS}


def base_kind(token_class: str) -> str:
    """The price kind of a class: ``input (batch)`` -> ``input``."""
    return token_class.split(" (", 1)[0]


def class_unit(token_class: str) -> str:
    """What a class counts: ``tokens``, ``calls``, ``sessions``, ``seconds``, ``characters`` or ``images``."""
    kind = _KINDS.get(base_kind(token_class))
    return kind.unit if kind is not None else "tokens"


def _per(token_class: str) -> Decimal:
    """How many units of a class a table price is for (``PriceKind.per``: 1M tokens, 1,000 calls, a minute ...)."""
    kind = _KINDS.get(base_kind(token_class))
    return kind.per if kind is not None else MILLION


def _per_label(token_class: str) -> str:
    kind = _KINDS.get(base_kind(token_class))
    return kind.per_label if kind is not None else "per 1M"
TOLERANCE = Decimal("0.001")
"""Prices within 0.1 % of each other agree: exports round costs, and a price has to be read back from them."""


@dataclass
class Line:
    day: date
    resource: str
    model: str
    kind: str
    billed_tokens: Decimal
    """The quantity billed, in the class's unit (``unit``); so are the other quantities of a line."""
    billed_cost: Decimal | None
    metered_tokens: Decimal
    metered_cost: Decimal | None
    estimated_tokens: Decimal = Decimal(0)
    explanations: list[str] = field(default_factory=list)
    unexplained_tokens: Decimal = Decimal(0)
    unexplained_cost: Decimal | None = Decimal(0)
    """``None`` when unexplained tokens have no price (or costs are not compared): never a 0 for unknown."""
    unmetered_tokens: Decimal = Decimal(0)
    unmetered_cost: Decimal | None = Decimal(0)
    """The billed cost of the unmetered tokens, at the line's billed price; ``None`` when it has none."""

    @property
    def unit(self) -> str:
        """What the line's quantities count: ``tokens``, ``calls``, ``sessions``, ``seconds``, ``characters``,
        ``images``."""
        return class_unit(self.kind)

    @property
    def token_difference(self) -> Decimal:
        return self.billed_tokens - self.metered_tokens

    @property
    def cost_difference(self) -> Decimal | None:
        if self.billed_cost is None or self.metered_cost is None:
            return None
        return self.billed_cost - self.metered_cost


@dataclass
class Finding:
    kind: str
    """``unmetered``, ``not-billed``, ``unpriced``, ``price``, ``timing``, ``commitment``, ``unknown-meter``,
    ``superseded``."""
    resource: str
    model: str
    token_class: str
    days: list[date]
    tokens: Decimal
    cost: Decimal | None
    text: str
    detail: dict[str, Any] = field(default_factory=dict)
    entry: PriceEntry | None = None
    """For a price finding: the entry that would make meter agree (``--write-prices``)."""


@dataclass
class Amount:
    """A sum of money, and how many of its parts had no price (left out of ``value``, never counted as 0)."""

    value: Decimal = Decimal(0)
    unpriced: int = 0

    def add(self, amount: Decimal | None) -> None:
        if amount is None:
            self.unpriced += 1
        else:
            self.value += amount

    def plus(self, other: Amount) -> Amount:
        return Amount(self.value + other.value, self.unpriced + other.unpriced)


@dataclass
class Rollup:
    """A resource's month: the lines' costs, and their quantities of tokens (the other units are in the lines)."""

    resource: str
    month: str
    billed_tokens: Decimal = Decimal(0)
    billed_cost: Amount = field(default_factory=Amount)
    metered_tokens: Decimal = Decimal(0)
    metered_cost: Amount = field(default_factory=Amount)
    unmetered_tokens: Decimal = Decimal(0)
    unmetered_cost: Amount = field(default_factory=Amount)
    unexplained_tokens: Decimal = Decimal(0)
    unexplained_cost: Amount = field(default_factory=Amount)
    by_cost: bool = True
    """Whether ``coverage`` weighs costs (or, when costs are not compared or a billed cost is missing, tokens)."""

    @property
    def coverage(self) -> Decimal | None:
        """The share of the billed cost whose tokens meter metered; ``None`` when nothing was billed."""
        if self.by_cost and not self.billed_cost.unpriced and not self.unmetered_cost.unpriced:
            base, unmetered = self.billed_cost.value, self.unmetered_cost.value
        else:
            base, unmetered = self.billed_tokens, self.unmetered_tokens
        return 1 - unmetered / base if base else None


@dataclass
class Totals:
    """Every total the report prints, each the sum of the lines it summarises."""

    billed: Amount = field(default_factory=Amount)
    """The per-token lines' billed cost (the roll-ups sum to it)."""
    metered: Amount = field(default_factory=Amount)
    unmetered: Amount = field(default_factory=Amount)
    unexplained: Amount = field(default_factory=Amount)
    """The lines' unexplained cost."""
    unknown: Amount = field(default_factory=Amount)
    """The unknown meters' billed cost (unexplained too)."""
    commitments: dict[str, Amount] = field(default_factory=dict)
    """Currency -> the commitments' cost."""
    commitment_quantities: dict[str, Decimal] = field(default_factory=dict)
    """Unit (``1 Hour``) -> the commitments' quantity."""
    others: dict[str, Amount] = field(default_factory=dict)
    """Currency -> the other services' cost."""


@dataclass
class Reconciliation:
    lines: list[Line]
    findings: list[Finding]
    rollups: list[Rollup]
    costs_compared: bool
    why_not_costs: str
    billed_total: Decimal
    """The billed money of the per-token rows and unknown meters (tokens when costs are not compared)."""
    unexplained: Decimal
    totals: Totals = field(default_factory=Totals)
    commitments: list[Commitment] = field(default_factory=list)
    others: list[OtherService] = field(default_factory=list)
    unknown: list[Any] = field(default_factory=list)
    """The bill's ``UnknownMeter`` entries."""

    @property
    def unexplained_share(self) -> Decimal:
        return self.unexplained / self.billed_total if self.billed_total else Decimal(0)

    @property
    def unexplained_unpriced(self) -> int:
        """Unexplained lines and unknown meters whose cost is not known: the share leaves them out."""
        return (self.totals.unexplained.unpriced + self.totals.unknown.unpriced) if self.costs_compared else 0


@dataclass
class NoMatch:
    """Nothing of the ledger matches anything of the export: the hosts, the resources, the flag to pass."""

    hosts: dict[str, int]
    resources: dict[str, str]
    """Resource name -> its ARM id."""

    def text(self) -> list[str]:
        hosts = ", ".join(f"{h or '(no host)'} ({n:,} call{'s' if n != 1 else ''})"
                          for h, n in sorted(self.hosts.items())) or "none (no calls in these days)"
        resources = ", ".join(f"{name} ({rid})" for name, rid in sorted(self.resources.items())) or \
            "none (no Azure OpenAI rows in these days)"
        out = ["no resource matches: meter's calls and the export's rows are on different resources, so nothing "
               "was compared", f"  the ledger's calls went to: {hosts}", f"  the export bills: {resources}"]
        if self.hosts and self.resources:
            host = sorted(self.hosts)[0]
            example = sorted(self.resources.values())[0]
            out.append(f"  pass the resource each host stands for, e.g. --resource {host}={example}")
        return out


def unmatched(billed: Billed, metered: Metered) -> NoMatch | None:
    """``NoMatch`` when the ledger and the export have calls or rows but no resource in common."""
    if not (billed.resources or billed.commitments) and not metered.resources and not metered.provisioned:
        return None  # both empty: nothing to compare, nothing missed
    billed_accounts = billed.accounts | {account(c.resource) for c in billed.commitments}
    metered_accounts = {account(r) for r in metered.resources}
    if billed_accounts & metered_accounts:
        return None
    return NoMatch(dict(metered.hosts), {name: billed.resource_ids.get(name, name) for name in billed_accounts})


def _price(cost: Decimal | None, tokens: Decimal | int) -> Decimal | None:
    return None if cost is None or not tokens else cost / Decimal(tokens)


def _timing(billed: Billed, metered: Metered, keys: set[CellKey], window: timedelta) -> dict[CellKey, str]:
    """The cells whose whole difference is timing, each with the text that says so."""
    series: dict[tuple[str, str, str], set[date]] = defaultdict(set)
    for day, resource, model, kind in keys:
        series[(resource, model, kind)].add(day)
    found: dict[CellKey, str] = {}
    minutes = int(window.total_seconds() // 60)
    for (resource, model, kind), days in series.items():
        for day in sorted(days):
            after = day + timedelta(days=1)
            a, b = (day, resource, model, kind), (after, resource, model, kind)
            if a in found or b in found or b not in keys:
                continue
            da, db = _difference(billed, metered, a), _difference(billed, metered, b)
            if da == 0 or da != -db:
                continue
            ma, mb = metered.cells.get(a), metered.cells.get(b)
            unit = class_unit(kind)
            if da < 0 and ma is not None and ma.late_tokens >= -da:
                text = (f"{-da:,} {unit} metered in the last {minutes} minutes of {day} UTC were billed on {after}")
            elif da > 0 and mb is not None and mb.early_tokens >= da:
                text = (f"{da:,} {unit} metered in the first {minutes} minutes of {after} UTC were billed on {day}")
            else:
                continue
            found[a] = found[b] = text
    return found


def _difference(billed: Billed, metered: Metered, key: CellKey) -> Decimal:
    b = billed.cells.get(key)
    m = metered.cells.get(key)
    return (b.tokens if b else Decimal(0)) - (m.tokens if m else Decimal(0))


def reconcile(billed: Billed, metered: Metered, window: timedelta = timedelta(minutes=10),
              tolerance: Decimal = TOLERANCE) -> Reconciliation:
    keys = set(billed.cells) | set(metered.cells)
    timing = _timing(billed, metered, keys, window)
    lines: list[Line] = []
    groups: dict[tuple[str, str, str, str], list[tuple[Line, BilledCell | None, MeteredCell | None]]] = \
        defaultdict(list)
    for key in sorted(keys):
        b, m = billed.cells.get(key), metered.cells.get(key)
        day, resource, model, kind = key
        billed_cost: Decimal | None = None
        metered_cost: Decimal | None = None
        if billed.costs_compared:  # a side with no cell has spent nothing; an unpriced token makes it unknown
            billed_cost = b.cost if b else Decimal(0)
            metered_cost = Decimal(0) if m is None else (m.cost if not m.unpriced_tokens else None)
        line = Line(day, resource, model, kind, b.tokens if b else Decimal(0), billed_cost,
                    m.tokens if m else Decimal(0), metered_cost, m.estimated_tokens if m else Decimal(0))
        lines.append(line)
        if key in timing:
            line.explanations.append("timing")
            groups[("timing", resource, model, kind)].append((line, b, m))
            continue
        delta = line.token_difference
        if delta > 0:
            line.explanations.append("unmetered")
            line.unmetered_tokens = delta
            billed_price = _price(b.cost if b else None, b.tokens if b else 0)
            line.unmetered_cost = delta * billed_price if billed_price is not None and billed.costs_compared else None
            groups[("unmetered", resource, model, kind)].append((line, b, m))
        elif delta < 0 and b is None and base_kind(kind) in NO_AZURE_METER:
            line.explanations.append("unpriced")  # no Azure meter bills it: metered, never billed, never priced
            groups[("unpriced", resource, model, kind)].append((line, b, m))
        elif delta < 0:
            covered = resource in billed.resources
            failed = m.failed_tokens if m else 0
            explained = -delta if not covered else min(-delta, Decimal(failed))
            line.explanations.append("not-billed")
            groups[("not-billed", resource, model, kind)].append((line, b, m))
            rest = -delta - explained
            if rest:
                line.explanations.append("unexplained")
                line.unexplained_tokens = rest
                price = _price(m.cost if m else None, (m.tokens - m.unpriced_tokens) if m else 0)
                line.unexplained_cost = rest * price if price is not None and billed.costs_compared else None
        if b is not None and m is not None and billed.costs_compared and b.cost is not None:
            suffix = kind[kind.index(" ("):] if " (" in kind else ""  # batch and priority have prices of their own
            groups[("price", resource, model, suffix)].append((line, b, m))
    findings: list[Finding] = []
    for (what, resource, model, kind), members in sorted(groups.items()):
        if what == "timing":
            findings.append(_timing_finding(resource, model, kind, members, timing))
        elif what == "unmetered":
            findings.append(_unmetered(resource, model, kind, members, billed, metered))
        elif what == "not-billed":
            findings.append(_not_billed(resource, model, kind, members, billed))
        elif what == "unpriced":
            findings.append(_unpriced(resource, model, kind, members))
        else:
            finding = _price_finding(resource, model, members, tolerance, billed)
            if finding is not None:
                findings.append(finding)
    for line in lines:
        if not line.explanations:
            line.explanations.append("agrees")
    findings.extend(_commitments(billed, metered))
    for meter, unknown in sorted(billed.unknown.items()):
        findings.append(Finding("unknown-meter", "", "", "", sorted(unknown.days), unknown.quantity, unknown.cost,
                                f"meter name {meter!r} is not one meter can read ({unknown.reason}); "
                                f"{unknown.rows} rows, first at {unknown.where}: not compared",
                                {"meter": meter, "reason": unknown.reason, "rows": unknown.rows}))
    for s in billed.superseded:
        findings.append(Finding("superseded", s.resource, "", "", [s.day], Decimal(0), None,
                                f"{s.day} of {s.resource}: the export run in {s.kept} supersedes {s.dropped} "
                                "(the latest run wins)", {"kept": s.kept, "dropped": s.dropped}))
    rollups = _rollups(lines, billed.costs_compared)
    totals = _totals(lines, billed)
    if billed.costs_compared:
        total = totals.billed.value + totals.unknown.value
        unexplained = totals.unexplained.value + totals.unknown.value
    else:
        total = sum((line.billed_tokens for line in lines), Decimal(0)) + sum(
            (u.quantity for u in billed.unknown.values()), Decimal(0))
        unexplained = sum((line.unexplained_tokens for line in lines), Decimal(0)) + sum(
            (u.quantity for u in billed.unknown.values()), Decimal(0))
    return Reconciliation(lines, findings, rollups, billed.costs_compared, billed.why_not_costs, total,
                          unexplained, totals, sorted(billed.commitments, key=lambda c: (c.day, c.resource, c.meter)),
                          [billed.others[k] for k in sorted(billed.others)],
                          [billed.unknown[k] for k in sorted(billed.unknown)])


def _totals(lines: list[Line], billed: Billed) -> Totals:
    out = Totals()
    if billed.costs_compared:
        for line in lines:
            out.billed.add(line.billed_cost)
            out.metered.add(line.metered_cost)
            if line.unmetered_tokens:
                out.unmetered.add(line.unmetered_cost)
            if line.unexplained_tokens:
                out.unexplained.add(line.unexplained_cost)
        for unknown in billed.unknown.values():
            out.unknown.add(unknown.cost)
    for c in billed.commitments:
        out.commitments.setdefault(c.currency, Amount()).add(c.cost)
        unit = c.unit or "unit"
        out.commitment_quantities[unit] = out.commitment_quantities.get(unit, Decimal(0)) + c.quantity
    for o in billed.others.values():
        out.others.setdefault(o.currency, Amount()).add(o.cost)
    return out


def _days(members: list[tuple[Line, BilledCell | None, MeteredCell | None]]) -> list[date]:
    return sorted({line.day for line, _, _ in members})


def _timing_finding(resource: str, model: str, kind: str, members: list[tuple[Line, Any, Any]],
                    timing: dict[CellKey, str]) -> Finding:
    texts = sorted({timing[(line.day, resource, model, kind)] for line, _, _ in members})
    moved = sum((abs(line.token_difference) for line, _, _ in members), Decimal(0)) / 2
    return Finding("timing", resource, model, kind, _days(members), moved, None, "; ".join(texts))


def _unmetered(resource: str, model: str, kind: str, members: list[tuple[Line, BilledCell | None, Any]],
               billed: Billed, metered: Metered) -> Finding:
    tokens = sum((line.token_difference for line, _, _ in members), Decimal(0))
    billed_tokens = sum((line.billed_tokens for line, _, _ in members), Decimal(0))
    cost: Decimal | None = None
    if billed.costs_compared:
        cost = Decimal(0)
        for line, b, _ in members:
            price = _price(b.cost if b else None, b.tokens if b else 0)
            cost += line.token_difference * price if price is not None else 0
    share = tokens / billed_tokens if billed_tokens else Decimal(1)
    days = _days(members)
    text = (f"{tokens:,} {kind} {class_unit(kind)} billed that meter did not meter ({share:.1%} of those billed) on "
            f"{_day_list(days)}: calls from clients meter does not wrap, other apps on {resource}, the playground "
            "or batch jobs")
    bare = sum(metered.without_usage.get((day, resource), 0) for day in days)
    if bare:
        text += (f"; the ledger also has {bare} call{'s' if bare > 1 else ''} to {resource} on those days with no "
                 "usage (failed, refused or cut off): the service may have billed some of these tokens for them")
    estimated = sum((line.estimated_tokens for line, _, _ in members), Decimal(0))
    if estimated:
        text += f"; {estimated:,} of the metered tokens are meter's estimates"
    return Finding("unmetered", resource, model, kind, days, tokens, cost, text,
                   {"share": format(share, "f"), "calls_without_usage": bare, "estimated_tokens": estimated})


def _not_billed(resource: str, model: str, kind: str, members: list[tuple[Line, Any, MeteredCell | None]],
                billed: Billed) -> Finding:
    tokens = -sum((line.token_difference for line, _, _ in members), Decimal(0))
    failed = sum((min(-line.token_difference, Decimal(m.failed_tokens)) for line, _, m in members if m),
                 Decimal(0))
    covered = resource in billed.resources
    days = _days(members)
    if not covered:
        why = f"the export has no rows for {resource}: it does not cover this resource"
    elif failed:
        why = f"{failed:,} of them from failed calls (Azure does not bill every failure)"
    else:
        why = "not explained: no failed calls account for them"
    return Finding("not-billed", resource, model, kind, days, tokens, None,
                   f"{tokens:,} {kind} {class_unit(kind)} metered that the export does not bill on {_day_list(days)}: "
                   f"{why}", {"failed_tokens": str(failed), "covered": covered})


def _unpriced(resource: str, model: str, kind: str, members: list[tuple[Line, Any, MeteredCell | None]]) -> Finding:
    quantity = sum((line.metered_tokens for line, _, _ in members), Decimal(0))
    days = _days(members)
    return Finding("unpriced", resource, model, kind, days, quantity, None,
                   f"{quantity:,} {kind} {class_unit(kind)} metered on {_day_list(days)} that no Azure meter bills "
                   "(no Azure price is published for them): never in an export, so not compared; counted, unpriced, "
                   "not unexplained", {"no_azure_meter": True})


def _price_finding(resource: str, model: str, members: list[tuple[Line, BilledCell | None, MeteredCell | None]],
                   tolerance: Decimal, billed: Billed) -> Finding | None:
    kinds: dict[str, dict[str, Any]] = {}
    effect = Decimal(0)
    billed_types: set[str] = set()
    metered_types: set[str] = set()
    rows: set[str] = set()
    regions: set[str] = set()
    unpriced = Decimal(0)
    days: set[date] = set()
    units = {line.unit for line, _, _ in members}
    for line, b, m in members:
        if b is None or m is None or b.cost is None:  # a line billed or metered on one side only: no price
            continue
        billed_types |= b.deployment_types
        metered_types |= m.deployment_types
        rows |= m.rows
        regions |= m.regions
        priced = m.tokens - m.unpriced_tokens
        pb = _price(b.cost, b.tokens)
        if pb is None:
            continue
        entry = kinds.setdefault(line.kind, {"billed": [], "metered": set(), "tokens": Decimal(0)})
        if m.unpriced_tokens:
            unpriced += m.unpriced_tokens
        matched = min(b.tokens, priced)
        pm = _price(m.cost, priced)
        entry["billed"].append((b.cost, b.tokens))
        entry["metered"] |= m.unit_prices
        if pm is None:
            days.add(line.day)
            continue
        if abs(pb - pm) > tolerance * pm:
            effect += matched * (pb - pm)
            entry["tokens"] += matched
            days.add(line.day)
            line.explanations.append("price")
    mismatched = {k: v for k, v in kinds.items() if v["tokens"] or unpriced}
    if not mismatched:
        return None
    prices: dict[str, Decimal] = {}
    detail_kinds = {}
    for kind, entry in sorted(mismatched.items()):
        cost = sum((c for c, _ in entry["billed"]), Decimal(0))
        tokens = sum((t for _, t in entry["billed"]), Decimal(0))
        per_unit = _tidy(cost / tokens * _per(kind))  # in the tables' terms: per 1M tokens, per 1,000 calls ...
        prices[kind] = per_unit
        detail_kinds[kind] = {"export_per_1m": format(per_unit, "f"),
                              "meter_per_1m": sorted(format(p.normalize(), "f") for p in entry["metered"])}
    billed_type = sorted(billed_types)[0] if billed_types else ""
    hints = []
    if billed_types and metered_types and billed_types != metered_types:
        hints.append(f"billed as {', '.join(sorted(billed_types))} but metered as {', '.join(sorted(metered_types))}:"
                     " the deployment map (or the deployment's type) is wrong")
    ratios = set()
    for kind, entry in mismatched.items():
        for p in entry["metered"]:
            if p:
                ratios.add((prices[kind] / p).quantize(Decimal("0.001")))
    if len(ratios) == 1 and not hints and len(mismatched) > 1 and len(mismatched) == len(kinds):
        ratio = next(iter(ratios))
        hints.append(f"every price is {abs(1 - ratio):.1%} {'below' if ratio < 1 else 'above'} meter's table: "
                     + ("a negotiated discount" if ratio < 1 else "a region uplift or a price change meter's tables "
                        "lack"))
    elif not hints and ratios:
        hints.append(f"only the {', '.join(mismatched)} price{'s' if len(mismatched) > 1 else ''} differ"
                     f"{'' if len(mismatched) > 1 else 's'}: a price change or correction meter's tables lack, or a "
                     "stale table")
    if unpriced:
        hints.append(f"meter had no price for {unpriced:,} of the {'tokens' if len(units) != 1 else units.pop()}")
    first = min(days) if days else min(line.day for line, _, _ in members)
    region = sorted(regions)[0] if billed_type == "Standard" and regions else ""
    suggested = PriceEntry(model, billed_type, region, first,
                           {kind.split(" (")[0]: price for kind, price in prices.items()})
    entry_lines = suggested.toml()
    used = ", ".join(sorted(rows)) or "none (unpriced)"
    per_kind = "; ".join(f"{kind}: export {v['export_per_1m']} vs meter {'/'.join(v['meter_per_1m']) or 'none'} "
                         f"USD {_per_label(kind)}" for kind, v in detail_kinds.items())
    return Finding("price", resource, model, ", ".join(mismatched), sorted(days),
                   sum((v["tokens"] for v in mismatched.values()), Decimal(0)), effect,
                   f"the token counts agree but the cost does not ({per_kind}); meter used {used}"
                   + (f"; {'; '.join(hints)}" if hints else ""),
                   {"kinds": detail_kinds, "billed_deployment_types": sorted(billed_types),
                    "metered_deployment_types": sorted(metered_types), "rows": sorted(rows),
                    "price_entry": "\n".join(entry_lines), "hints": hints}, suggested)


@dataclass(frozen=True)
class PriceEntry:
    """The ``[[price]]`` entry that would make meter's price agree with the export's (USD per 1M tokens, per 1,000
    tool calls, per session, per minute, per image: each column's own terms)."""

    model: str
    deployment_type: str
    region: str
    effective_from: date
    prices: dict[str, Decimal]
    source: str = "reconciled with the Azure cost export"

    def toml(self) -> list[str]:
        out = ["[[price]]", f"model = {_toml_string(self.model)}",
               f"deployment_type = {_toml_string(self.deployment_type)}"]
        if self.region:
            out.append(f"region = {_toml_string(self.region)}")
        out.append(f"effective_from = {self.effective_from.isoformat()}")
        out += [f'{kind} = "{format(price, "f")}"' for kind, price in self.prices.items()]
        out.append(f"source = {_toml_string(self.source)}")
        return out


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's."""
    return json.dumps(text, ensure_ascii=False)


def _tidy(value: Decimal) -> Decimal:
    """A price read back from rounded costs, to 6 decimal places (per 1M tokens, or the column's own terms), without
    trailing zeros."""
    return value.quantize(Decimal("0.000001")).normalize()


def _commitments(billed: Billed, metered: Metered) -> list[Finding]:
    by: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for c in billed.commitments:
        by[(c.resource, c.meter)].append(c)
    out = []
    for (resource, meter), rows in sorted(by.items()):
        quantity = sum((c.quantity for c in rows), Decimal(0))
        costs = [c.cost for c in rows if c.cost is not None]
        days = sorted({c.day for c in rows})
        use = [metered.provisioned[(d, resource)] for d in days if (d, resource) in metered.provisioned]
        calls = sum(u.calls for u in use)
        tokens = sum(u.tokens for u in use)
        active = sum(len(u.hours) for u in use)
        unit = rows[0].unit
        hourly = "hour" in unit.lower()
        text = (f"{meter} ({rows[0].pricing_model or 'commitment'}): {quantity:,} x {unit or 'unit'} on "
                f"{_day_list(days)}")
        if costs:
            text += f", {sum(costs, Decimal(0)).normalize():,f} {rows[0].currency} billed"
            if len(costs) < len(rows):
                text += f" (+ {len(rows) - len(costs)} rows without a cost)"
        if use:
            text += (f"; the ledger has {calls:,} calls, {tokens:,} tokens on this resource's provisioned "
                     f"deployments, in {active} of the {24 * len(days)} hours")
            if hourly and quantity:
                text += f" ({Decimal(tokens) / quantity:,.0f} tokens per billed unit-hour)"
        else:
            text += "; the ledger has no calls on provisioned deployments of this resource"
        out.append(Finding("commitment", resource, "", "", days, quantity, sum(costs, Decimal(0)) if costs else None,
                           text, {"meter": meter, "unit": unit, "calls": calls, "tokens": tokens,
                                  "active_hours": active, "hours": 24 * len(days)}))
    for (day, resource), seen in sorted(metered.provisioned.items()):
        if not any(c.resource == resource and c.day == day for c in billed.commitments):
            out.append(Finding("commitment", resource, "", "", [day], Decimal(seen.tokens), None,
                               f"{seen.calls:,} calls on provisioned deployments of {resource} on {day}, and no "
                               "commitment row for them in the export", {"calls": seen.calls}))
    return out


def _day_list(days: list[date]) -> str:
    if len(days) > 4:
        return f"{len(days)} days from {days[0]} to {days[-1]}"
    return ", ".join(str(d) for d in days)


def _rollups(lines: list[Line], costs_compared: bool) -> list[Rollup]:
    out: dict[tuple[str, str], Rollup] = {}
    for line in lines:
        key = (line.resource, line.day.isoformat()[:7])
        r = out.setdefault(key, Rollup(*key, by_cost=costs_compared))
        if line.unit == "tokens":  # quantities of other units are not added to tokens (their costs are)
            r.billed_tokens += line.billed_tokens
            r.metered_tokens += line.metered_tokens
            r.unmetered_tokens += line.unmetered_tokens
            r.unexplained_tokens += line.unexplained_tokens
        if costs_compared:
            r.billed_cost.add(line.billed_cost)
            r.metered_cost.add(line.metered_cost)
            if line.unmetered_tokens:
                r.unmetered_cost.add(line.unmetered_cost)
            if line.unexplained_tokens:
                r.unexplained_cost.add(line.unexplained_cost)
    return [out[k] for k in sorted(out)]
