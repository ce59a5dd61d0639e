"""The value types of a price table: rows, corrections, aliases, and the Cost result.

Plain frozen dataclasses: a loaded table is shared by every thread that prices a
call, so nothing in it may change after loading. Money is ``Decimal`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class PriceKind:
    """A column of the price tables, and which tokens of a call it bills.

    ``counted_by`` is the usage attribute that counts its tokens together with those of the price
    kinds ``within`` it (cached input tokens are counted in the input tokens, and billed at their own
    rate): a call's bucket for this kind is that count less the buckets of the kinds within, so every
    token is billed exactly once (``meter.pricing.usage.token_buckets``). meter's catalogue of usage
    kinds names these columns (``price_kind``), and a test checks the two agree; pricing keeps this
    table itself because it imports nothing of meter.
    """

    name: str
    header: str
    """How listings (``meter pricing list``) head its column."""
    counted_by: str
    within: tuple[str, ...] = ()
    per: Decimal = Decimal(1_000_000)
    """A price in the tables is USD per this many ``unit``: a million tokens, a thousand tool calls."""
    unit: str = "tokens"
    any_model: bool = False
    """A fee the same whatever model the call used (a built-in tool's): priced from the rows of the
    ``TOOLS_MODEL`` entry when the model's own rows do not price it."""

    @property
    def per_label(self) -> str:
        """What a price is per, for people: ``per 1M`` (tokens), ``per 1,000 calls``, ``per session``, ``per minute``
        (of audio), ``per 1M characters``, ``per image``."""
        if self.unit == "seconds" and self.per == 60:
            return "per minute"
        if self.per == 1:
            return f"per {self.unit.removesuffix('s')}"
        count = "1M" if self.per == 1_000_000 else f"{self.per:,}"
        return f"per {count}" if self.unit == "tokens" else f"per {count} {self.unit}"


PRICE_KINDS: tuple[PriceKind, ...] = (
    PriceKind("input", "input", "input_tokens", ("cached_input", "cache_write", "audio_input", "image_input")),
    PriceKind("cached_input", "cached", "cached_input_tokens", ("cached_audio_input",)),
    PriceKind("cache_write", "cache write", "cache_write_input_tokens"),
    PriceKind("output", "output", "output_tokens", ("audio_output", "image_output")),
    PriceKind("audio_input", "audio in", "audio_input_tokens", ("cached_audio_input",)),
    PriceKind("cached_audio_input", "cached audio", "cached_audio_input_tokens"),
    PriceKind("audio_output", "audio out", "audio_output_tokens"),
    PriceKind("image_input", "image in", "image_input_tokens"),
    PriceKind("image_output", "image out", "image_output_tokens"),
    PriceKind("web_search", "web search/1K", "web_search_calls", per=Decimal(1000), unit="calls", any_model=True),
    PriceKind("file_search", "file search/1K", "file_search_calls", per=Decimal(1000), unit="calls",
              any_model=True),
    PriceKind("code_interpreter", "code interp./session", "code_interpreter_sessions", per=Decimal(1),
              unit="sessions", any_model=True),
    PriceKind("audio_minute", "audio/min", "audio_seconds", per=Decimal(60), unit="seconds"),
    PriceKind("speech_characters", "speech/1M chars", "speech_characters", unit="characters"),
    PriceKind("image_standard", "image std", "images", per=Decimal(1), unit="images"),
    PriceKind("image_standard_wide", "image std wide", "images", per=Decimal(1), unit="images"),
    PriceKind("image_hd", "image hd", "images", per=Decimal(1), unit="images"),
    PriceKind("image_hd_wide", "image hd wide", "images", per=Decimal(1), unit="images"),
)
"""Every price kind, in display order."""

#: Price kinds (table columns), in display order. Token buckets of a call are mutually exclusive
#: (see ``meter.pricing.usage.token_buckets``), one bucket per kind.
KINDS: tuple[str, ...] = tuple(kind.name for kind in PRICE_KINDS)

#: USD per this many tokens: every token price in a table is per 1M tokens (``PriceKind.per`` for the others).
TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)
PER: dict[str, Decimal] = {kind.name: kind.per for kind in PRICE_KINDS}
"""What each kind's price is per (``PriceKind.per``), by kind name."""
ANY_MODEL_KINDS = frozenset(kind.name for kind in PRICE_KINDS if kind.any_model)
TOOLS_MODEL = "built-in-tools"
"""The model entry of the tables whose rows price the built-in tools' fees for every model."""
UNIT_KINDS = frozenset(kind.name for kind in PRICE_KINDS if kind.unit in ("seconds", "characters", "images"))
"""Columns a call without token usage is billed at (``PriceBook.cost_of(units=...)``), not read from a usage."""

Basis = Literal["list", "provisioned", "unknown"]


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One price: a (model, deployment type, region, kind, tier) key valid for a date range.

    ``effective_until`` is exclusive. ``above_input_tokens`` is 0 for the normal
    tier; a row with 272000 applies to every token of a call whose input exceeds
    272000 tokens (a cliff, not a graduated tier). ``region`` is the region or
    region group as written; ``regions`` is what it expands to ("" for types
    that are not priced per region).
    """

    id: str
    entry_id: str
    model: str
    deployment_type: str
    region: str | None
    regions: tuple[str, ...]
    kind: str
    usd_per_1m: Decimal
    effective_from: date
    effective_until: date | None
    above_input_tokens: int
    source: str
    recorded_at: date | None
    note: str | None
    table_version: str
    file: str

    def effective_on(self, day: date) -> bool:
        """True when the row's validity range contains ``day``."""
        return self.effective_from <= day and (self.effective_until is None or day < self.effective_until)


@dataclass(frozen=True, slots=True)
class Correction:
    """A fix of a wrong row's price, recorded on ``recorded_at``.

    The wrong row stays in the table: "what did we believe on date X" uses it when
    X is before ``recorded_at``; the true price uses the correction.
    """

    id: str
    row_id: str
    usd_per_1m: Decimal
    recorded_at: date
    reason: str | None
    source: str
    table_version: str
    file: str


@dataclass(frozen=True, slots=True)
class Alias:
    """A name that resolves to a model id, optionally only for a date range.

    Dated aliases model Azure moving a bare name to a new version (``gpt-4o``
    pointed at 2024-05-13, later at 2024-11-20).
    """

    name: str
    model: str
    effective_from: date | None
    effective_until: date | None
    source: str | None

    def effective_on(self, day: date) -> bool:
        """True when the alias applied on ``day``."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_until is None or day < self.effective_until


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Per-model resolution facts.

    ``same_price_snapshots``: a dated id ``<id>-YYYY-MM-DD`` costs the same as ``<id>``.
    """

    id: str
    same_price_snapshots: bool
    note: str | None


@dataclass(frozen=True, slots=True)
class PriceTable:
    """One loaded table file: its version, rows, corrections, models and aliases."""

    file: str
    version: str
    published: date
    description: str | None
    rows: tuple[PriceRow, ...]
    corrections: tuple[Correction, ...]
    models: tuple[ModelInfo, ...]
    aliases: tuple[Alias, ...]


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call and everything needed to audit it.

    ``total`` is ``None`` when any part could not be priced (``basis`` "unknown",
    with ``reason``): an unpriced call is never reported as $0. ``amounts`` has one
    entry per token bucket the call used, ``None`` for a bucket without a price.
    ``row_ids`` are the ids of the price rows (and corrections) used, so a cost
    stays reproducible after the table changes.
    """

    total: Decimal | None
    amounts: Mapping[str, Decimal | None]
    tokens: Mapping[str, int | Decimal]
    """What the call is billed for, per price column: tokens, tool calls and sessions, images, seconds."""
    unit_prices: Mapping[str, Decimal]
    basis: Basis
    model: str | None
    requested_model: str | None
    deployment_type: str | None
    assumed_deployment_type: bool
    region: str | None
    at: datetime
    table_version: str
    row_ids: tuple[str, ...] = ()
    estimated: bool = False
    long_context: bool = False
    reason: str | None = None
    currency: str = "USD"
    believed_at: datetime | None = field(default=None)
