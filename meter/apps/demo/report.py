"""What the demo shows at the end: calls, tokens and cost per deployment, team, kind of call and tier.

Built from the records the meter emitted, the same ones the Prometheus sink
counted, so the ``--json`` totals and ``/metrics`` agree (a test checks it).
What a call is billed for beyond tokens (built-in tool calls, seconds of audio,
characters, images) is listed under the table, per deployment, as the records
carry it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import meter
from meter.core.record import USAGE_KINDS
from meter.textout import money, money_total, visible

TOKEN_FIELDS = tuple(kind.name for kind in USAGE_KINDS if kind.report)
"""The usage kinds a report shows (the catalogue's ``report`` kinds), counted as the metrics count them."""
TOOL_FIELDS = tuple(kind.name for kind in USAGE_KINDS if kind.counted_from == "output")
"""The built-in tool counts (``meter.core.tools``): every one is listed under the table where non-zero."""


def beyond_tokens(record: meter.CallRecord) -> dict[str, float]:
    """What ``record`` was billed for besides tokens: its tool calls, and the units (seconds of audio,
    characters, images) of a call billed by them, by name; only what is non-zero."""
    out: dict[str, float] = {}
    if record.usage is not None:
        for name in TOOL_FIELDS:
            value = getattr(record.usage, name)
            if value:
                out[name] = value
    units = getattr(record, "units", None)
    if units is not None and dataclasses.is_dataclass(units):
        for f in dataclasses.fields(units):
            value = getattr(units, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value:
                out[f.name] = value
    return out


@dataclass
class Tally:
    """Calls, tokens and cost of one group of records."""

    requests: int = 0
    errors: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    estimated: int = 0
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0
    estimated_cost_usd: Decimal = Decimal(0)
    beyond: dict[str, float] = field(default_factory=dict)
    """Tool calls and units (``beyond_tokens``), summed."""

    def add(self, record: meter.CallRecord) -> None:
        """Count a record the way the metric sinks do: estimates apart from the service's own counts."""
        self.requests += 1
        if not record.provisional:
            for name, value in beyond_tokens(record).items():
                self.beyond[name] = self.beyond.get(name, 0) + value
        if record.outcome not in ("ok", "incomplete"):
            self.errors += 1
        usage, cost = record.usage, record.cost
        total = cost.total if cost is not None else None
        if usage is not None and record.usage_source == "estimated":
            self.estimated += 1
            if not record.provisional:
                self.estimated_input_tokens += usage.input_tokens
                self.estimated_output_tokens += usage.output_tokens
                if total is not None:
                    self.estimated_cost_usd += total
        elif usage is not None:
            for name in TOKEN_FIELDS:
                self.tokens[name] += getattr(usage, name)
            if total is not None:
                self.cost_usd += total
        if cost is not None and total is None:
            self.unpriced += 1

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, **self.tokens,
                "cost_usd": str(self.cost_usd), "unpriced": self.unpriced, "estimated": self.estimated,
                "estimated_input_tokens": self.estimated_input_tokens,
                "estimated_output_tokens": self.estimated_output_tokens,
                "estimated_cost_usd": str(self.estimated_cost_usd),
                "beyond_tokens": {k: v for k, v in sorted(self.beyond.items())}}


@dataclass
class Summary:
    """Totals, and tallies per deployment, per team, per kind of call, per service tier and per outcome."""

    total: Tally = field(default_factory=Tally)
    deployments: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    teams: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    kinds: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    """By endpoint (``CallRecord.api``; a compaction is ``responses compact``)."""
    tiers: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    """By the service tier a call is priced at (``""``: the call named none and the service said none)."""
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, records: list[meter.CallRecord], team_key: str | None = "team") -> Summary:
        """Tally ``records``; "teams" are the values of the attribution label ``team_key``."""
        summary = cls()
        for record in records:
            summary.total.add(record)
            summary.deployments[record.deployment_label].add(record)
            summary.teams[record.attributes.get(team_key, "") if team_key else ""].add(record)
            summary.kinds[record.api if record.operation != "compact" else f"{record.api} compact"].add(record)
            summary.tiers[record.service_tier or ""].add(record)
            label = record.outcome if not record.error_type else f"{record.outcome} ({record.error_type})"
            summary.outcomes[label] += 1
        return summary

    def as_json(self) -> dict[str, Any]:
        return {
            "totals": self.total.as_json(),
            "deployments": {k: v.as_json() for k, v in sorted(self.deployments.items())},
            "teams": {k: v.as_json() for k, v in sorted(self.teams.items())},
            "kinds": {k: v.as_json() for k, v in sorted(self.kinds.items())},
            "tiers": {k: v.as_json() for k, v in sorted(self.tiers.items())},
            "outcomes": dict(sorted(self.outcomes.items())),
        }

    def table(self) -> str:
        """A plain-text table, one row per deployment and per team, then the totals.

        Names are shown ``visible``: a team is whatever the caller tagged, and a control character in it
        must not act on the terminal or start a row of its own. Money is exact (``money``: an embeddings
        call's 0.00000044 is not rounded to 0), and a cost that leaves calls out says so
        (``0.0193 + 2 unpriced``): unknown is never shown as 0."""
        tallies = [self.total, *self.deployments.values(), *self.teams.values(), *self.kinds.values(),
                   *self.tiers.values()]
        width = max(13, *(len(money_total(t.cost_usd, t.unpriced)) + 2 for t in tallies))
        head = (f"{'':<26}{'calls':>6}{'errors':>7}{'input':>9}{'cached':>9}{'output':>9}{'reasoning':>10}"
                f"{'cost USD':>{width}}")
        lines = [head, "-" * len(head)]

        def row(label: str, t: Tally) -> str:
            k = t.tokens
            return (f"{label:<26}{t.requests:>6}{t.errors:>7}{k['input_tokens']:>9}{k['cached_input_tokens']:>9}"
                    f"{k['output_tokens']:>9}{k['reasoning_output_tokens']:>10}"
                    f"{money_total(t.cost_usd, t.unpriced):>{width}}")

        lines.append("per deployment")
        lines += [row("  " + visible(name), t) for name, t in sorted(self.deployments.items())]
        lines.append("per team")
        lines += [row("  " + (visible(name) or "(none)"), t) for name, t in sorted(self.teams.items())]
        lines.append("per kind of call")
        lines += [row("  " + name, t) for name, t in sorted(self.kinds.items())]
        lines.append("per service tier")
        lines += [row("  " + (visible(name) or "(none)"), t) for name, t in sorted(self.tiers.items())]
        lines.append("-" * len(head))
        lines.append(row("total", self.total))
        outcomes = visible(", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items())))
        lines.append(f"outcomes: {outcomes}")
        beyond = [(name, t) for name, t in sorted(self.deployments.items()) if t.beyond]
        if beyond:
            lines.append("billed beyond tokens (in the cost above where a price is published; else the call is "
                         "unpriced):")
            lines += [f"  {visible(name):<24}{_beyond_text(t.beyond)}" for name, t in beyond]
        if self.total.estimated or self.total.unpriced:
            lines.append(f"estimated usage (not in the totals above): {self.total.estimated} calls, "
                         f"{self.total.estimated_input_tokens} input and {self.total.estimated_output_tokens} output "
                         f"tokens, {money(self.total.estimated_cost_usd)} USD; unpriced: {self.total.unpriced} calls")
        return "\n".join(lines)


_BEYOND_NAMES = {"web_search_calls": "web searches", "file_search_calls": "file searches",
                 "code_interpreter_sessions": "code interpreter sessions",
                 "image_generation_calls": "image tool calls", "computer_calls": "computer use calls",
                 "mcp_calls": "MCP calls", "audio_seconds": "seconds of audio",
                 "speech_characters": "characters spoken", "images": "images"}


def _beyond_text(counts: dict[str, float]) -> str:
    """``4 web searches, 4 code interpreter sessions`` (a kind meter adds later shows by its field name)."""
    return ", ".join(f"{format(value, 'g')} {_BEYOND_NAMES.get(name, name.replace('_', ' '))}"
                     for name, value in counts.items())
