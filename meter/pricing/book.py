"""``PriceBook``: the loaded price tables, indexed for pricing one call at a time.

It is called once per LLM call in a hot path, so everything that can be decided
at load time is: rows are indexed by (model, deployment type, region, kind,
tier) with the highest table layer and the newest row first, corrections are
indexed by row id, and model names resolve through a cache.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib import resources
from pathlib import Path

from meter.pricing.deployment_types import (
    DEFAULT_DEPLOYMENT_TYPE,
    canonical_deployment_type,
    is_provisioned,
    is_regional,
    normalize_region,
)
from meter.pricing.errors import PricingFileError, Problem
from meter.pricing.model import ANY_MODEL_KINDS, PER, TOOLS_MODEL, Correction, Cost, PriceRow, PriceTable
from meter.pricing.pricing_call import PricingCall
from meter.pricing.resolve import ModelResolver
from meter.pricing.table import load_table
from meter.pricing.usage import UsageLike, token_buckets

logger = logging.getLogger("pricing")

_Key = tuple[str, str, str, str, int]
_Quote = tuple[Decimal, tuple[str, ...], tuple[str, ...]]
"""USD per 1M tokens, the row (and correction) ids used, their table versions."""
_Plan = tuple[tuple[tuple[str, Decimal | None], ...], tuple[str, ...], str | None, str | None]
"""Per bucket used, its unit price (``None``: no row); the row ids; the table version(s); why unknown."""


def builtin_table_paths() -> list[Path]:
    """The built-in table files, in name order: the repository's ``pricing/`` folder, shipped in the
    package as ``meter.pricing.tables``."""
    data = resources.files("meter.pricing.tables")
    return sorted(Path(str(p)) for p in data.iterdir() if p.name.endswith(".toml"))


def _as_datetime(value: datetime | date | None) -> datetime:
    """A timezone-aware UTC datetime; naive values are taken as UTC, dates as midnight UTC."""
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


class PriceBook:
    """Price tables layered lowest first (built-ins, then user tables); later layers win."""

    def __init__(self, tables: Sequence[PriceTable]) -> None:
        self.tables: tuple[PriceTable, ...] = tuple(tables)
        self.version: str = "+".join(dict.fromkeys(t.version for t in self.tables)) or "(empty)"
        """The versions of the tables, each once (the built-in files share one version)."""
        self._index: dict[_Key, list[PriceRow]] = {}
        self._quotes: dict[tuple[str, str, str, str, int, date, date | None], _Quote | None] = {}
        self._plans: dict[tuple[str, str, str, int, date, date | None, tuple[str, ...]], _Plan] = {}
        self._dtype_names: dict[str, str] = {}
        self._region_names: dict[str, str] = {}
        self._rows_by_id: dict[str, PriceRow] = {}
        self._corrections: dict[str, list[Correction]] = {}
        self._tiers: dict[str, tuple[int, ...]] = {}
        self._model_kinds: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._unpriced: dict[str, int] = {}
        self._layer_of_file: dict[str, int] = {t.file: i for i, t in enumerate(self.tables)}
        self._build()

    # ---- loading ----------------------------------------------------------

    @classmethod
    def load(cls, *paths: str | Path, include_builtin: bool = True) -> PriceBook:
        """The built-in tables with the tables at ``paths`` layered on top, in order.

        A user row wins over a built-in row for the same key on the dates it covers;
        on other dates the built-in row still applies.
        """
        files: list[str | Path] = [*builtin_table_paths()] if include_builtin else []
        files.extend(paths)
        return cls([load_table(f) for f in files])

    def _build(self) -> None:
        layered: list[tuple[int, PriceRow]] = []
        tiers: dict[str, set[int]] = {}
        for layer, table in enumerate(self.tables):
            for row in table.rows:
                layered.append((layer, row))
                self._rows_by_id[row.id] = row
                self._model_kinds.setdefault(row.model, set()).add(row.kind)
                if row.above_input_tokens:
                    tiers.setdefault(row.model, set()).add(row.above_input_tokens)
        layered.sort(key=lambda lr: (lr[0], lr[1].effective_from), reverse=True)
        for _, row in layered:
            for region in row.regions:
                key = (row.model, row.deployment_type, region, row.kind, row.above_input_tokens)
                self._index.setdefault(key, []).append(row)
        self._tiers = {model: tuple(sorted(ts, reverse=True)) for model, ts in tiers.items()}
        problems: list[Problem] = []
        for table in self.tables:
            for corr in table.corrections:
                if corr.row_id not in self._rows_by_id:
                    entry, _, kind = corr.row_id.rpartition("/")
                    problems.append(
                        Problem(
                            table.file,
                            f"correction ({entry})",
                            "corrects",
                            f"no price entry {entry!r} with a {kind} price in this or an earlier table",
                        )
                    )
                    continue
                self._corrections.setdefault(corr.row_id, []).append(corr)
        for items in self._corrections.values():
            items.sort(key=lambda c: c.recorded_at, reverse=True)
        priced = set(self._model_kinds)
        for table in self.tables:
            for alias in table.aliases:
                if alias.model not in priced:
                    problems.append(
                        Problem(
                            table.file,
                            f"alias ({alias.name})",
                            "model",
                            f"{alias.model!r} has no price rows in this or an earlier table",
                        )
                    )
        if problems:
            raise PricingFileError(problems)
        self._resolver = ModelResolver(
            priced,
            (m for t in self.tables for m in t.models),
            (a for t in self.tables for a in t.aliases),
        )

    # ---- queries ----------------------------------------------------------

    @property
    def unpriced_calls(self) -> dict[str, int]:
        """Calls that got basis "unknown", per requested model name (a copy)."""
        with self._lock:
            return dict(self._unpriced)

    def models(self) -> list[str]:
        """Every model id with at least one price row."""
        return sorted(self._model_kinds)

    def rows(self, model: str | None = None) -> list[PriceRow]:
        """All rows (of every layer), optionally of one model, in table order."""
        return [r for t in self.tables for r in t.rows if model is None or r.model == model]

    def corrections_for(self, row_id: str) -> list[Correction]:
        """Corrections of a row, newest first."""
        return list(self._corrections.get(row_id, ()))

    def aliases_of(self, model: str) -> list[str]:
        """Names that may resolve to ``model`` (for listings)."""
        return sorted(name for name, items in self._resolver.aliases.items() if any(a.model == model for a in items))

    def resolve_model(self, name: str, at: datetime | date | None = None) -> str | None:
        """The model id whose rows price ``name`` at ``at`` (default now), or ``None``."""
        return self._resolver.resolve(name, _as_datetime(at).date())

    def row_price(self, row: PriceRow, believed: date | None = None) -> tuple[Decimal, Correction | None]:
        """A row's price as believed on ``believed`` (default: with every correction).

        A correction only applies to rows of its own or an earlier table: a user row
        that repeats a built-in entry id is not changed by the built-in's corrections.
        """
        for corr in self._corrections.get(row.id, ()):
            if self._layer_of_file[corr.file] < self._layer_of_file[row.file]:
                continue
            if believed is None or corr.recorded_at <= believed:
                return corr.usd_per_1m, corr
        return row.usd_per_1m, None

    def find_row(
        self,
        model: str,
        deployment_type: str,
        region: str,
        kind: str,
        tier: int,
        day: date,
        believed: date | None = None,
    ) -> PriceRow | None:
        """The row that applies: highest layer first, then the newest effective on ``day``.

        A row for the call's region wins; for types other than Standard, a row with no
        region (one price everywhere) applies where no region has its own row: Azure
        prices Global and Data Zone alike in most regions and differently in a few
        (US Government, the APAC data zone).
        """
        keys = [(model, deployment_type, region, kind, tier)]
        if region and not is_regional(deployment_type):
            keys.append((model, deployment_type, "", kind, tier))
        for key in keys:
            for row in self._index.get(key, ()):
                if not row.effective_on(day):
                    continue
                if believed is not None and row.recorded_at is not None and row.recorded_at > believed:
                    continue
                return row
        return None

    def applied_rows(
        self, at: datetime | date, believed_at: datetime | date | None = None
    ) -> list[tuple[PriceRow, str]]:
        """(row, region) for every region a row prices on ``at``; region ``""`` for one price everywhere.

        A row of a region group that a later table overrides in some member regions
        appears only for the regions where it still applies.
        """
        day = _as_datetime(at).date()
        believed = None if believed_at is None else _as_datetime(believed_at).date()
        out: list[tuple[PriceRow, str]] = []
        for key in self._index:
            row = self.find_row(*key, day, believed)
            if row is not None and (row.model, row.deployment_type, key[2], row.kind, row.above_input_tokens) == key:
                out.append((row, key[2]))
        return out

    def effective_rows(self, at: datetime | date, believed_at: datetime | date | None = None) -> list[PriceRow]:
        """Every row in force at ``at``, one per key (for listings and diffs)."""
        day = _as_datetime(at).date()
        believed = None if believed_at is None else _as_datetime(believed_at).date()
        seen: dict[str, PriceRow] = {}
        for key in self._index:
            row = self.find_row(*key, day, believed)
            if row is not None:
                seen[row.id] = row
        return list(seen.values())

    # ---- pricing ----------------------------------------------------------

    def cost_of(
        self,
        usage: UsageLike | None,
        *,
        model: str | None,
        deployment_type: str | None = None,
        region: str | None = None,
        at: datetime | date | None = None,
        believed_at: datetime | date | None = None,
        estimated: bool = False,
        units: Mapping[str, int | float] | None = None,
    ) -> Cost:
        """The ``Cost`` of one call of ``model`` with ``usage`` at time ``at`` (default now).

        ``units`` are what a call is billed in besides tokens, by price column (``{"audio_minute": 90.0}``:
        90 seconds at the per-minute price; ``PriceKind.per`` says what a price is per); ``usage`` may be
        ``None`` for a call billed by its units alone.

        ``deployment_type`` defaults to GlobalStandard (flagged in the Cost).
        ``believed_at`` answers "what did we believe then": corrections recorded
        after it are ignored. Never returns $0 for something it cannot price.
        """
        call = PricingCall(
            tokens=_quantities(usage, units),
            requested_model=model,
            assumed=deployment_type is None,
            region=region,
            at=_as_datetime(at),
            believed_at=None if believed_at is None else _as_datetime(believed_at),
            estimated=estimated,
            book_version=self.version,
        )
        if deployment_type is None:
            dtype = DEFAULT_DEPLOYMENT_TYPE
        else:
            dtype = self._dtype_names.get(deployment_type, "")
            if not dtype:
                try:
                    dtype = canonical_deployment_type(deployment_type)
                except ValueError as exc:
                    return self._unknown(call, None, None, str(exc))
                if len(self._dtype_names) < 256:
                    self._dtype_names[deployment_type] = dtype
        day = call.at.date()
        resolved = None if model is None else self._resolver.resolve(model, day)
        if is_provisioned(dtype):
            return call.cost(
                total=Decimal(0),
                amounts=dict.fromkeys(call.tokens, Decimal(0)),
                basis="provisioned",
                model=resolved,
                deployment_type=dtype,
            )
        if resolved is None:
            reason = "no model name given" if model is None else f"unknown model {model!r}: no price rows match it"
            return self._unknown(call, None, dtype, reason)
        region_key = ""
        if region:
            region_key = self._region_names.get(region, "")
            if not region_key:
                region_key = normalize_region(region)
                if len(self._region_names) < 1024:
                    self._region_names[region] = region_key
        if is_regional(dtype) and not region_key:
            return self._unknown(
                call, resolved, dtype, f"{dtype} (regional) prices differ per region; no region given"
            )
        tier = 0
        if usage is not None:
            for threshold in self._tiers.get(resolved, ()):
                if usage.input_tokens > threshold:
                    tier = threshold
                    break
        return self._price_buckets(call, resolved, dtype, region_key, tier)

    def price(
        self,
        usage: UsageLike,
        *,
        model: str | None,
        deployment_type: str | None = None,
        region: str | None = None,
        at: datetime | date | None = None,
        believed_at: datetime | date | None = None,
        estimated: bool = False,
    ) -> Cost:
        """Deprecated: the old name of ``cost_of``, kept one release for code that calls it (a
        ``DeprecationWarning`` says so). It was renamed because ``price`` also named ``Costing``'s
        different contract (a call's cost, deployment type and region)."""
        warnings.warn("PriceBook.price is renamed PriceBook.cost_of", DeprecationWarning, stacklevel=2)
        return self.cost_of(usage, model=model, deployment_type=deployment_type, region=region, at=at,
                            believed_at=believed_at, estimated=estimated)

    def _price_buckets(self, call: PricingCall, model: str, dtype: str, region_key: str, tier: int) -> Cost:
        """Price every token bucket of the call; any bucket without a row makes the call unknown.

        Everything but the multiplication depends only on the key below (the model, type,
        region, tier, day and which buckets the call used), so it is worked out once per key
        (``_plan``) and a call only multiplies its counts by the planned unit prices.
        """
        day = call.at.date()
        believed = None if call.believed_at is None else call.believed_at.date()
        tokens = call.tokens
        key = (model, dtype, region_key, tier, day, believed, tuple(tokens))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(model, dtype, region_key, tier, day, believed, tuple(tokens))
            if len(self._plans) >= 16_384:  # bounded (days go by); rebuilt on demand
                self._plans.clear()
            self._plans[key] = plan
        units, row_ids, table_version, reason = plan
        amounts: dict[str, Decimal | None] = {}
        unit_prices: dict[str, Decimal] = {}
        total = Decimal(0)
        for kind, unit in units:
            if unit is None:
                amounts[kind] = None
                continue
            amount = tokens[kind] * unit / PER[kind]
            amounts[kind] = amount
            unit_prices[kind] = unit
            total += amount
        if reason is not None:
            self._count_unknown(call.requested_model, reason)
        return call.cost(
            total=None if reason is not None else total,
            amounts=amounts,
            unit_prices=unit_prices,
            basis="unknown" if reason is not None else "list",
            model=model,
            deployment_type=dtype,
            table_version=table_version,
            row_ids=row_ids,
            long_context=bool(tier),
            reason=reason,
        )

    def _plan(self, model: str, dtype: str, region_key: str, tier: int, day: date, believed: date | None,
              kinds_used: tuple[str, ...]) -> _Plan:
        """The unit price of each bucket (``None``: no row), the rows behind them, and why not, if not."""
        # Models before GPT-5.6 do not charge extra for cache writes: without any
        # cache_write row for the model, written tokens are billed as input.
        kinds = self._model_kinds.get(model, ())
        charges_cache_write = "cache_write" in kinds
        # Cached audio has its own rate only where Azure meters it (gpt-realtime-mini, the 2024-10-01
        # realtime preview ...); elsewhere it is billed as cached input, as the service reports it.
        own_cached_audio = "cached_audio_input" in kinds
        units: list[tuple[str, Decimal | None]] = []
        row_ids: list[str] = []
        versions: list[str] = []
        missing: list[str] = []
        for kind in kinds_used:
            lookup_kind = kind
            if kind == "cache_write" and not charges_cache_write:
                lookup_kind = "input"
            elif kind == "cached_audio_input" and not own_cached_audio:
                lookup_kind = "cached_input"
            quote = self._quote(model, dtype, region_key, lookup_kind, tier, day, believed)
            if quote is None and kind in ANY_MODEL_KINDS:  # a built-in tool's fee: the same for every model
                quote = self._quote(TOOLS_MODEL, _FEE_TYPES.get(dtype, dtype), region_key, kind, 0, day, believed)
            if quote is None:
                units.append((kind, None))
                missing.append(kind)
                continue
            unit, used_ids, used_versions = quote
            units.append((kind, unit))
            for used_id in used_ids:
                if used_id not in row_ids:
                    row_ids.append(used_id)
            for version in used_versions:
                if version not in versions:
                    versions.append(version)
        reason = None
        if missing:
            where = dtype + (f" in {region_key}" if region_key else "")
            tier_text = f" for input above {tier} tokens (long context)" if tier else ""
            reason = f"no {', '.join(missing)} price for {model} on {where}{tier_text} at {day.isoformat()}"
        return tuple(units), tuple(row_ids), "+".join(versions) if versions else None, reason

    def _quote(self, model: str, dtype: str, region_key: str, kind: str, tier: int, day: date,
               believed: date | None) -> _Quote | None:
        """The unit price of one kind on one day, with the row (and correction) ids behind it.

        Looked up once per key and then reused: the book never changes after it is built, and a
        day's key set is small (the models, types and regions actually called).
        """
        key = (model, dtype, region_key, kind, tier, day, believed)
        try:
            return self._quotes[key]
        except KeyError:
            pass
        row = self.find_row(model, dtype, region_key, kind, tier, day, believed)
        quote: _Quote | None = None
        if row is not None:
            unit, corr = self.row_price(row, believed)
            if corr is None:
                quote = (unit, (row.id,), (row.table_version,))
            else:
                quote = (unit, (row.id, corr.id), tuple(dict.fromkeys((row.table_version, corr.table_version))))
        if len(self._quotes) >= 16_384:  # bounded (days go by); rebuilt from the index on demand
            self._quotes.clear()
        self._quotes[key] = quote
        return quote

    def _unknown(self, call: PricingCall, resolved: str | None, dtype: str | None, reason: str) -> Cost:
        self._count_unknown(call.requested_model, reason)
        return call.cost(
            total=None,
            amounts=dict.fromkeys(call.tokens),
            basis="unknown",
            model=resolved,
            deployment_type=dtype,
            reason=reason,
        )

    def _count_unknown(self, model: str | None, reason: str) -> None:
        """Count every unpriced call; warn once per model so logs are not flooded."""
        name = model if model is not None else "(none)"
        with self._lock:
            self._unpriced[name] = self._unpriced.get(name, 0) + 1
            first = name not in self._warned
            self._warned.add(name)
        if first:
            logger.warning("cannot price calls of model %r: %s (cost reported as unknown, not 0)", name, reason)


def _quantities(usage: UsageLike | None, units: Mapping[str, int | float] | None) -> dict[str, int | Decimal]:
    """What a call is billed for, by price column: its token buckets and its units (seconds exact, as text)."""
    out: dict[str, int | Decimal] = dict(token_buckets(usage)) if usage is not None else {}
    if units:
        for kind, quantity in units.items():
            if kind not in PER:
                raise ValueError(f"no price column {kind!r}; the columns are {', '.join(PER)}")
            if quantity:
                out[kind] = Decimal(repr(quantity)) if isinstance(quantity, float) else quantity
    return out


_FEE_TYPES = {"GlobalPriority": "GlobalStandard", "GlobalFlex": "GlobalStandard", "GlobalBatch": "GlobalStandard",
              "DataZonePriority": "DataZoneStandard", "DataZoneBatch": "DataZoneStandard"}
"""The deployment type whose tool fees a call on a tier or Batch pays: the tools' meters are per Global,
Data Zone or regional deployment, with no tier of their own."""


def fee_deployment_type(deployment_type: str) -> str:
    """The deployment type a built-in tool's fee is billed at for a call on ``deployment_type`` (Global Priority,
    Flex and Batch calls pay the Global fee; Data Zone Priority and Batch the Data Zone fee)."""
    return _FEE_TYPES.get(deployment_type, deployment_type)
