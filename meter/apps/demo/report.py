"""What the demo shows at the end: calls, tokens and cost per deployment and per team.

Built from the records the meter emitted, the same ones the Prometheus sink
counted, so the ``--json`` totals and ``/metrics`` agree (a test checks it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import meter
from meter.core.record import USAGE_KINDS
from meter.textout import money, money_total, visible

TOKEN_FIELDS = tuple(kind.name for kind in USAGE_KINDS if kind.report)
"""The usage kinds a report shows (the catalogue's ``report`` kinds), counted as the metrics count them."""


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

    def add(self, record: meter.CallRecord) -> None:
        """Count a record the way the metric sinks do: estimates apart from the service's own counts."""
        self.requests += 1
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
                "estimated_cost_usd": str(self.estimated_cost_usd)}


@dataclass
class Summary:
    """Totals, and tallies per deployment, per team and per outcome."""

    total: Tally = field(default_factory=Tally)
    deployments: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    teams: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, records: list[meter.CallRecord], team_key: str | None = "team") -> Summary:
        """Tally ``records``; "teams" are the values of the attribution label ``team_key``."""
        summary = cls()
        for record in records:
            summary.total.add(record)
            summary.deployments[record.deployment or "?"].add(record)
            summary.teams[record.attributes.get(team_key, "") if team_key else ""].add(record)
            label = record.outcome if not record.error_type else f"{record.outcome} ({record.error_type})"
            summary.outcomes[label] += 1
        return summary

    def as_json(self) -> dict[str, Any]:
        return {
            "totals": self.total.as_json(),
            "deployments": {k: v.as_json() for k, v in sorted(self.deployments.items())},
            "teams": {k: v.as_json() for k, v in sorted(self.teams.items())},
            "outcomes": dict(sorted(self.outcomes.items())),
        }

    def table(self) -> str:
        """A plain-text table, one row per deployment and per team, then the totals.

        Names are shown ``visible``: a team is whatever the caller tagged, and a control character in it
        must not act on the terminal or start a row of its own. Money is exact (``money``: an embeddings
        call's 0.00000044 is not rounded to 0), and a cost that leaves calls out says so
        (``0.0193 + 2 unpriced``): unknown is never shown as 0."""
        tallies = [self.total, *self.deployments.values(), *self.teams.values()]
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
        lines.append("-" * len(head))
        lines.append(row("total", self.total))
        outcomes = visible(", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items())))
        lines.append(f"outcomes: {outcomes}")
        if self.total.estimated or self.total.unpriced:
            lines.append(f"estimated usage (not in the totals above): {self.total.estimated} calls, "
                         f"{self.total.estimated_input_tokens} input and {self.total.estimated_output_tokens} output "
                         f"tokens, {money(self.total.estimated_cost_usd)} USD; unpriced: {self.total.unpriced} calls")
        return "\n".join(lines)
