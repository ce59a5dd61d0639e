"""``PricingCall``: what one ``PriceBook.cost_of`` call knows before any row is looked up.

It carries the call's own facts (token buckets, requested model, time, flags) to the
one place a ``Cost`` is built, so every way a price can end (priced, provisioned,
unknown) fills the same fields the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from meter.pricing.model import Basis, Cost


@dataclass(frozen=True, slots=True)
class PricingCall:
    """The facts of one call to price; ``cost`` builds its ``Cost``."""

    tokens: dict[str, int | Decimal]
    """The quantity billed per price column: tokens, calls, sessions, images; seconds as exact decimals."""
    requested_model: str | None
    assumed: bool
    region: str | None
    at: datetime
    believed_at: datetime | None
    estimated: bool
    book_version: str

    def cost(
        self,
        *,
        total: Decimal | None,
        amounts: dict[str, Decimal | None],
        basis: Basis,
        model: str | None,
        deployment_type: str | None,
        unit_prices: dict[str, Decimal] | None = None,
        table_version: str | None = None,
        row_ids: tuple[str, ...] = (),
        long_context: bool = False,
        reason: str | None = None,
    ) -> Cost:
        return Cost(
            total=total,
            amounts=amounts,
            tokens=self.tokens,
            unit_prices=unit_prices or {},
            basis=basis,
            model=model,
            requested_model=self.requested_model,
            deployment_type=deployment_type,
            assumed_deployment_type=self.assumed,
            region=self.region,
            at=self.at,
            believed_at=self.believed_at,
            table_version=table_version or self.book_version,
            row_ids=row_ids,
            estimated=self.estimated,
            long_context=long_context,
            reason=reason,
        )
