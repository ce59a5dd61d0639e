"""Loading and validating one price-table file (TOML).

A table is written by hand, so loading is mostly checking: every problem is
collected with the file, entry, field and what is wrong, and reported together
in one ``PricingFileError``. Nothing is derived here: a price is the decimal
string the file holds, never a multiple of another row.

File layout (see docs/pricing.md)::

    [table]            version, published, currency = "USD", description
    [sources]          short name -> URL or document, usable in ``source``
    [region_groups]    name -> list of regions, usable in ``region``
    [[model]]          id, same_price_snapshots, note
    [[alias]]          name, model, effective_from, effective_until, source
    [[price]]          one entry per (model, deployment type, region, tier, date range);
                       each kind field (input, cached_input, ...) in it is one row
    [[correction]]     corrects = entry id, recorded_at, source, reason, kind fields
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from meter.pricing.deployment_types import canonical_deployment_type, is_provisioned, is_regional, normalize_region
from meter.pricing.errors import PricingFileError, Problem
from meter.pricing.model import KINDS, Alias, Correction, ModelInfo, PriceRow, PriceTable
from meter.pricing.table_fields import MAX_PRICE, MIN_PRICE_EXPONENT, FieldChecker

__all__ = ["MAX_PRICE", "MAX_TABLE_BYTES", "MIN_PRICE_EXPONENT", "entry_id", "load_table", "parse_table"]

TOP_LEVEL = frozenset({"table", "sources", "region_groups", "model", "alias", "price", "correction"})
TABLE_FIELDS = frozenset({"version", "published", "currency", "description"})
PRICE_FIELDS = frozenset(
    {
        "id",
        "model",
        "deployment_type",
        "region",
        "effective_from",
        "effective_until",
        "above_input_tokens",
        "source",
        "recorded_at",
        "note",
        *KINDS,
    }
)
CORRECTION_FIELDS = frozenset({"corrects", "recorded_at", "reason", "source", *KINDS})
MODEL_FIELDS = frozenset({"id", "same_price_snapshots", "note"})
ALIAS_FIELDS = frozenset({"name", "model", "effective_from", "effective_until", "source"})


MAX_TABLE_BYTES = 16 * 1024 * 1024
"""A price table file larger than this is refused (the built-in tables are a few hundred KiB)."""
def load_table(path: str | Path) -> PriceTable:
    """Read and validate one table file; raises ``PricingFileError`` on any problem."""
    file = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_TABLE_BYTES + 1)
    except OSError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"cannot read file: {exc.strerror or exc}")]) from exc
    if len(raw) > MAX_TABLE_BYTES:
        raise PricingFileError([Problem(file, "(file)", "-", f"larger than {MAX_TABLE_BYTES} bytes; "
                                                            "split it into several tables")])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"not UTF-8 text: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"not valid TOML: {exc}")]) from exc
    except RecursionError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", "nested too deeply to be a price table")]) from exc
    return parse_table(data, file)


def parse_table(data: Mapping[str, Any], file: str) -> PriceTable:
    """Validate an already-parsed TOML document; ``file`` names it in error messages."""
    return _Parser(file).parse(data)


def entry_id(
    model: str, deployment_type: str, region: str | None, above_input_tokens: int, effective_from: date
) -> str:
    """The default id of a price entry: ``model:DeploymentType[:region][:>tokens]@from``.

    Deterministic, so corrections and reports can name an entry without the file
    having to spell out ids; an entry may still set ``id`` explicitly.
    """
    parts = [model, deployment_type]
    if region:
        parts.append(region)
    if above_input_tokens:
        parts.append(f">{above_input_tokens}")
    return ":".join(parts) + f"@{effective_from.isoformat()}"


@dataclass(frozen=True, slots=True)
class _Span:
    """A row's key range, for the overlap check."""

    start: date
    end: date | None
    entry: str


class _Parser(FieldChecker):
    """Collects every problem of one file instead of stopping at the first; the sections and the file."""

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.region_groups: dict[str, tuple[str, ...]] = {}

    # ---- whole file -------------------------------------------------------

    def parse(self, data: Mapping[str, Any]) -> PriceTable:
        for key in data:
            if key not in TOP_LEVEL:
                self.fail("(file)", key, f"unknown section; expected one of {', '.join(sorted(TOP_LEVEL))}")
        version, published, description = self._table_header(data.get("table"))
        self.sources = self._string_map(data.get("sources", {}), "sources")
        self.region_groups = self._region_groups(data.get("region_groups", {}))
        models = tuple(m for i, raw in enumerate(self._array(data, "model")) if (m := self._model(i, raw)) is not None)
        aliases = tuple(a for i, raw in enumerate(self._array(data, "alias")) if (a := self._alias(i, raw)) is not None)
        rows: list[PriceRow] = []
        entries: dict[str, set[str]] = {}
        for i, raw in enumerate(self._array(data, "price")):
            self._price(i, raw, version, rows, entries)
        corrections: list[Correction] = []
        for i, raw in enumerate(self._array(data, "correction")):
            self._correction(i, raw, version, entries, corrections)
        self._check_overlaps(rows)
        if self.problems:
            raise PricingFileError(self.problems)
        return PriceTable(
            file=self.file,
            version=version,
            published=published or date.min,
            description=description,
            rows=tuple(rows),
            corrections=tuple(corrections),
            models=models,
            aliases=aliases,
        )

    def _array(self, data: Mapping[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.fail("(file)", key, f"must be an array of tables, written [[{key}]]")
            return []
        return value

    def _table_header(self, header: Any) -> tuple[str, date | None, str | None]:
        entry = "[table]"
        if not isinstance(header, dict):
            self.fail(entry, "table", "missing [table] section with version and published")
            return "?", None, None
        self._unknown_fields(entry, header, TABLE_FIELDS)
        version = header.get("version")
        if not isinstance(version, str) or not version.strip():
            self.fail(entry, "version", "missing or empty: every table needs a version id")
            version = "?"
        published = self._date(entry, header, "published", required=True)
        currency = header.get("currency", "USD")
        if currency != "USD":
            self.fail(entry, "currency", f"{currency!r} is not supported: Azure prices are set in USD")
        description = header.get("description")
        if description is not None and not isinstance(description, str):
            self.fail(entry, "description", "must be a string")
            description = None
        return version, published, description

    def _string_map(self, value: Any, section: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(f"[{section}]", section, 'must be a table of name = "text"')
            return {}
        out: dict[str, str] = {}
        for key, text in value.items():
            if isinstance(text, str) and text.strip():
                out[key] = text
            else:
                self.fail(f"[{section}]", key, "must be a non-empty string")
        return out

    def _region_groups(self, value: Any) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, dict):
            self.fail("[region_groups]", "region_groups", 'must be a table of name = ["region", ...]')
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for key, regions in value.items():
            if isinstance(regions, list) and regions and all(isinstance(r, str) and r for r in regions):
                out[key.strip().lower()] = tuple(normalize_region(r) for r in regions)
            else:
                self.fail("[region_groups]", key, "must be a non-empty list of region names")
        return out

    # ---- sections ---------------------------------------------------------

    def _model(self, index: int, raw: Any) -> ModelInfo | None:
        entry = f"model[{index}]"
        if not isinstance(raw, dict):
            self.fail(entry, "model", "must be a table")
            return None
        self._unknown_fields(entry, raw, MODEL_FIELDS)
        model_id = self._string(entry, raw, "id", required=True)
        same = raw.get("same_price_snapshots", False)
        if not isinstance(same, bool):
            self.fail(entry, "same_price_snapshots", "must be true or false")
            same = False
        note = raw.get("note")
        if model_id is None:
            return None
        return ModelInfo(id=model_id.lower(), same_price_snapshots=same, note=note if isinstance(note, str) else None)

    def _alias(self, index: int, raw: Any) -> Alias | None:
        entry = f"alias[{index}]"
        if not isinstance(raw, dict):
            self.fail(entry, "alias", "must be a table")
            return None
        self._unknown_fields(entry, raw, ALIAS_FIELDS)
        name = self._string(entry, raw, "name", required=True)
        model = self._string(entry, raw, "model", required=True)
        start = self._date(entry, raw, "effective_from", required=False)
        end = self._date(entry, raw, "effective_until", required=False)
        if start and end and end <= start:
            self.fail(entry, "effective_until", f"{end} is not after effective_from {start}")
        source = raw.get("source")
        if name is None or model is None:
            return None
        return Alias(
            name=name.lower(),
            model=model.lower(),
            effective_from=start,
            effective_until=end,
            source=self.sources.get(source, source) if isinstance(source, str) else None,
        )

    def _price(
        self,
        index: int,
        raw: Any,
        version: str,
        rows: list[PriceRow],
        entries: dict[str, set[str]],
    ) -> None:
        label = f"price[{index}]"
        if not isinstance(raw, dict):
            self.fail(label, "price", "must be a table")
            return
        model = self._string(label, raw, "model", required=True)
        start = self._date(label, raw, "effective_from", required=False)
        if model is not None and start is not None:
            label = f"price[{index}] ({model}@{start})"
        before = len(self.problems)
        self._unknown_fields(label, raw, PRICE_FIELDS)
        if start is None:
            self._date(label, raw, "effective_from", required=True)
        deployment_type = self._deployment_type(label, raw)
        region, regions = self._region(label, raw, deployment_type)
        end = self._date(label, raw, "effective_until", required=False)
        if start and end and end <= start:
            self.fail(label, "effective_until", f"{end} is not after effective_from {start}")
        above = raw.get("above_input_tokens", 0)
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            self.fail(label, "above_input_tokens", f"{above!r} must be a whole number of tokens >= 0")
            above = 0
        source = self._source(label, raw)
        recorded_at = self._date(label, raw, "recorded_at", required=False)
        note = raw.get("note")
        if note is not None and not isinstance(note, str):
            self.fail(label, "note", "must be a string")
        prices = self._kinds(label, raw)
        if len(self.problems) > before or model is None or start is None or deployment_type is None:
            return
        assert source is not None
        eid = raw.get("id") or entry_id(model.lower(), deployment_type, region, above, start)
        if not isinstance(eid, str):
            self.fail(label, "id", "must be a string")
            return
        if eid in entries:
            self.fail(label, "id", f"duplicate entry id {eid!r}")
            return
        entries[eid] = set(prices)
        for kind, price in prices.items():
            rows.append(
                PriceRow(
                    id=f"{eid}/{kind}",
                    entry_id=eid,
                    model=model.lower(),
                    deployment_type=deployment_type,
                    region=region,
                    regions=regions,
                    kind=kind,
                    usd_per_1m=price,
                    effective_from=start,
                    effective_until=end,
                    above_input_tokens=above,
                    source=source,
                    recorded_at=recorded_at,
                    note=note if isinstance(note, str) else None,
                    table_version=version,
                    file=self.file,
                )
            )

    def _deployment_type(self, label: str, raw: Mapping[str, Any]) -> str | None:
        name = self._string(label, raw, "deployment_type", required=True)
        if name is None:
            return None
        try:
            canonical = canonical_deployment_type(name)
        except ValueError as exc:
            self.fail(label, "deployment_type", str(exc))
            return None
        if is_provisioned(canonical):
            self.fail(
                label,
                "deployment_type",
                f"{canonical} is billed per PTU-hour, not per token; token prices for it would be wrong "
                "(calls on PTU deployments are priced 0 with basis 'provisioned')",
            )
            return None
        return canonical

    def _region(
        self, label: str, raw: Mapping[str, Any], deployment_type: str | None
    ) -> tuple[str | None, tuple[str, ...]]:
        region = self._string(label, raw, "region", required=False)
        if deployment_type is None:
            return None, ()
        if not is_regional(deployment_type) and region is None:
            return None, ("",)  # one price in every region (the usual case for Global and Data Zone)
        if region is None:
            self.fail(
                label,
                "region",
                "missing: Standard (regional) prices differ per region; give a region or a region group",
            )
            return None, ()
        group = region.lower()
        if group in self.region_groups:
            return group, self.region_groups[group]
        key = normalize_region(region)
        return key, (key,)

    def _correction(
        self,
        index: int,
        raw: Any,
        version: str,
        entries: dict[str, set[str]],
        out: list[Correction],
    ) -> None:
        label = f"correction[{index}]"
        if not isinstance(raw, dict):
            self.fail(label, "correction", "must be a table")
            return
        target = self._string(label, raw, "corrects", required=True)
        if target is not None:
            label = f"correction[{index}] ({target})"
        before = len(self.problems)
        self._unknown_fields(label, raw, CORRECTION_FIELDS)
        recorded_at = self._date(label, raw, "recorded_at", required=True)
        source = self._source(label, raw)
        reason = raw.get("reason")
        if reason is not None and not isinstance(reason, str):
            self.fail(label, "reason", "must be a string")
        prices = self._kinds(label, raw)
        if target is not None and target in entries:
            for kind in prices:
                if kind not in entries[target]:
                    self.fail(label, kind, f"entry {target!r} has no {kind} price to correct")
        if len(self.problems) > before or target is None or recorded_at is None or source is None:
            return
        for kind, price in prices.items():
            out.append(
                Correction(
                    id=f"{target}/{kind}#corrected@{recorded_at.isoformat()}",
                    row_id=f"{target}/{kind}",
                    usd_per_1m=price,
                    recorded_at=recorded_at,
                    reason=reason if isinstance(reason, str) else None,
                    source=source,
                    table_version=version,
                    file=self.file,
                )
            )

    # ---- cross-row checks -------------------------------------------------

    def _check_overlaps(self, rows: list[PriceRow]) -> None:
        """Two rows for the same key and overlapping dates would make the price ambiguous."""
        spans: dict[tuple[str, str, str, str, int], list[_Span]] = {}
        for row in rows:
            for region in row.regions:
                key = (row.model, row.deployment_type, region, row.kind, row.above_input_tokens)
                spans.setdefault(key, []).append(_Span(row.effective_from, row.effective_until, row.entry_id))
        reported: set[tuple[str, str, str]] = set()
        for key, items in spans.items():
            items.sort(key=lambda s: s.start)
            for prev, cur in itertools.pairwise(items):
                if prev.end is None or prev.end > cur.start:
                    pair = (prev.entry, cur.entry, key[3])
                    if pair in reported:
                        continue
                    reported.add(pair)
                    where = f" in region {key[2]}" if key[2] else ""
                    until = prev.end.isoformat() if prev.end else "open-ended"
                    self.fail(
                        cur.entry,
                        "effective_from",
                        f"{key[3]} price from {cur.start} overlaps entry {prev.entry!r} "
                        f"({prev.start} to {until}){where}; end the older entry with effective_until",
                    )
