"""Turn a saved answer of Azure's Retail Prices API into rows of this table format.

The API (https://prices.azure.com/api/retail/prices) is the source of truth for
list prices, but its meter names follow no single scheme: the zone is spelled
``glbl``, ``global``, ``Data Zone``, ``DZone`` or ``dz``; token kinds ``Inp``,
``Input``, ``Outp``; versions as ``1120`` or glued (``mini0718``, ``BatchOutp``).
This module reads the name word by word and refuses to guess: whatever it
cannot map is reported with a reason, never written as a row.

It only converts; it never fetches. Saving the API's answer is the caller's
explicit step, so prices never change silently at run time.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pricing.deployment_types import (
    DATA_ZONE_BATCH,
    DATA_ZONE_PRIORITY,
    DATA_ZONE_STANDARD,
    GLOBAL_BATCH,
    GLOBAL_PRIORITY,
    GLOBAL_STANDARD,
    STANDARD,
    normalize_region,
)
from pricing.errors import PricingFileError, Problem
from pricing.model import KINDS

#: Azure's four-digit version codes (MMDD) and the model version dates they stand for.
VERSION_CODES: dict[str, str] = {
    "0513": "2024-05-13",
    "0718": "2024-07-18",
    "0806": "2024-08-06",
    "0912": "2024-09-12",
    "1001": "2024-10-01",
    "1120": "2024-11-20",
    "1217": "2024-12-17",
    "0131": "2025-01-31",
    "0414": "2025-04-14",
    "0416": "2025-04-16",
    "0610": "2025-06-10",
    "0807": "2025-08-07",
    "0828": "2025-08-28",
    "1006": "2025-10-06",
    "1113": "2025-11-13",
    "1211": "2025-12-11",
    "0305": "2026-03-05",
    "0423": "2026-04-23",
    "0709": "2026-07-09",
}

_GLOBAL = frozenset({"glbl", "global", "gbl", "glb"})
_DATA_ZONE = frozenset({"datazone", "dzone", "dz", "dzn"})
_REGIONAL = frozenset({"regnl", "rgnl", "regional", "rgl", "regl"})
_CACHED = frozenset({"cached", "cache", "cchd"})
_WRITE = frozenset({"write", "wr", "writes"})
_AUDIO = frozenset({"aud", "audio"})
_INPUT = frozenset({"inp", "input", "in"})
_OUTPUT = frozenset({"outp", "output", "out", "opt"})
_BATCH = frozenset({"batch"})
_PRIORITY = frozenset({"priority", "prio", "pri"})
_NOISE = frozenset({"rsng", "txt", "tokens", "token", "tkn", "tkns", "std", "standard", "1k", "1m"})
_IMAGE = frozenset({"img", "image", "images"})
_GLUED = re.compile(r"(batch|cached|cchd)(?=[a-z])")
_CODE = re.compile(r"(?<=[a-z])(?=\d{4}\b)")


@dataclass(frozen=True, slots=True)
class MeterMeaning:
    """What a meter name says: model (as named, with version date if any), price kind, deployment type."""

    model: str
    kind: str
    deployment_type: str


@dataclass
class ImportResult:
    """The generated TOML text and an account of every item that was not turned into a row."""

    toml: str
    items: int = 0
    mapped: int = 0
    entries: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> str:
        """A human summary: counts, then one line per skipped item with its reason."""
        lines = [f"mapped {self.mapped} of {self.items} items into {self.entries} price entries"]
        if self.skipped:
            lines.append(f"not mapped ({len(self.skipped)}):")
            lines.extend(f"  {name!r}: {reason}" for name, reason in self.skipped)
        return "\n".join(lines)


class UnmappedMeter(ValueError):
    """A meter name this importer cannot read with confidence; the message says why."""


def _tokens(meter_name: str) -> list[str]:
    """Words of a meter name, lower-cased, with glued words and version codes split apart."""
    text = meter_name.lower().replace("-", " ").replace("_", " ")
    text = _GLUED.sub(r"\1 ", text)
    text = _CODE.sub(" ", text)
    text = re.sub(r"\bdata\s+zone\b", "datazone", text)
    return text.split()


def parse_meter_name(meter_name: str) -> MeterMeaning:
    """Read a meter name; raises ``UnmappedMeter`` when any part of it is unclear."""
    scope: str | None = None
    batch = priority = cached = write = audio = False
    direction: str | None = None
    version: str | None = None
    words: list[str] = []
    for token in _tokens(meter_name):
        if token in _GLOBAL:
            scope = "global"
        elif token in _DATA_ZONE:
            scope = "datazone"
        elif token in _REGIONAL:
            scope = "regional"
        elif token in _BATCH:
            batch = True
        elif token in _PRIORITY:
            priority = True
        elif token in _CACHED:
            cached = True
        elif token in _WRITE:
            write = True
        elif token in _AUDIO:
            audio = True
        elif token in _INPUT:
            direction = "input"
        elif token in _OUTPUT:
            direction = "output"
        elif token in _IMAGE:
            raise UnmappedMeter("image tokens have no price kind in this table")
        elif token in _NOISE:
            continue
        elif re.fullmatch(r"\d{4}", token):
            if token not in VERSION_CODES:
                raise UnmappedMeter(f"unknown version code {token}")
            version = VERSION_CODES[token]
        else:
            words.append(token)
    if scope is None:
        raise UnmappedMeter("no deployment scope (glbl / Data Zone / regnl) in the meter name")
    if direction is None:
        raise UnmappedMeter("no token direction (Inp / Outp) in the meter name")
    if not words:
        raise UnmappedMeter("no model name in the meter name")
    kind = _kind(direction, cached=cached, write=write, audio=audio)
    return MeterMeaning(
        model="-".join(words) + (f"-{version}" if version else ""),
        kind=kind,
        deployment_type=_deployment_type(scope, batch=batch, priority=priority),
    )


def _kind(direction: str, *, cached: bool, write: bool, audio: bool) -> str:
    if direction == "output":
        if cached or write:
            raise UnmappedMeter("cached output is not a price kind")
        return "audio_output" if audio else "output"
    if cached and audio:
        raise UnmappedMeter("cached audio input has no price kind in this table")
    if cached and write:
        return "cache_write"
    if cached:
        return "cached_input"
    return "audio_input" if audio else "input"


def _deployment_type(scope: str, *, batch: bool, priority: bool) -> str:
    if batch and priority:
        raise UnmappedMeter("both Batch and Priority in one meter name")
    if scope == "regional":
        if batch or priority:
            raise UnmappedMeter("regional Batch / Priority is not a deployment type")
        return STANDARD
    if scope == "global":
        return GLOBAL_BATCH if batch else GLOBAL_PRIORITY if priority else GLOBAL_STANDARD
    return DATA_ZONE_BATCH if batch else DATA_ZONE_PRIORITY if priority else DATA_ZONE_STANDARD


def per_million_factor(unit_of_measure: str) -> Decimal | None:
    """Multiplier from the meter's unit to USD per 1M tokens; ``None`` for non-token units."""
    unit = unit_of_measure.strip().lower().replace(" ", "")
    if unit in {"1k", "1ktokens"}:
        return Decimal(1000)
    if unit in {"1m", "1mtokens"}:
        return Decimal(1)
    return None


def load_retail_answer(path: str | Path) -> dict[str, Any]:
    """Read a saved API answer; numbers become ``Decimal`` so no price passes through a float."""
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"cannot read file: {exc.strerror or exc}")]) from exc
    except json.JSONDecodeError as exc:
        raise PricingFileError([Problem(file, "(file)", "-", f"not valid JSON: {exc}")]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("Items"), list):
        raise PricingFileError([Problem(file, "(file)", "Items", "not a Retail Prices API answer: no Items list")])
    return data


def import_retail(
    answer: Mapping[str, Any],
    *,
    version: str,
    published: date,
    source_name: str = "saved answer",
    resolve_model: Callable[[str, date], str | None] | None = None,
) -> ImportResult:
    """Convert the API answer's ``Items`` into a table (TOML text) plus a report.

    ``resolve_model`` maps a meter's model (e.g. ``o3-2025-04-16``) to a model id of
    the existing table (``o3``) so imported rows line up with the built-in ones;
    names it does not know are kept as read from the meter.
    """
    items = answer.get("Items", [])
    result = ImportResult(toml="", items=len(items))
    entries: dict[tuple[str, str, str | None, date], dict[str, tuple[Decimal, str]]] = {}
    for item in items:
        name = str(item.get("meterName", ""))
        try:
            key, kind, price = _convert(item, resolve_model)
        except UnmappedMeter as exc:
            result.skipped.append((name, str(exc)))
            continue
        kinds = entries.setdefault(key, {})
        if kind in kinds and kinds[kind][0] != price:
            result.skipped.append(
                (name, f"conflicts with meter {kinds[kind][1]!r} ({kinds[kind][0]} vs {price} per 1M); kept the first")
            )
            continue
        if kind not in kinds:
            kinds[kind] = (price, name)
        result.mapped += 1
    result.entries = len(entries)
    result.toml = _render(entries, version=version, published=published, source_name=source_name)
    return result


def _convert(
    item: Mapping[str, Any], resolve_model: Callable[[str, date], str | None] | None
) -> tuple[tuple[str, str, str | None, date], str, Decimal]:
    item_type = item.get("type", "Consumption")
    if item_type != "Consumption":
        raise UnmappedMeter(f"type {item_type!r} is not pay-as-you-go consumption")
    unit = str(item.get("unitOfMeasure", ""))
    factor = per_million_factor(unit)
    if factor is None:
        raise UnmappedMeter(f"unit {unit!r} is not a token unit (1K or 1M)")
    if Decimal(str(item.get("tierMinimumUnits", 0))) != 0:
        raise UnmappedMeter("tiered meter (tierMinimumUnits > 0)")
    meaning = parse_meter_name(str(item.get("meterName", "")))
    try:
        raw_price = item["retailPrice"]
        price = Decimal(str(raw_price)) * factor
    except (KeyError, InvalidOperation) as exc:
        raise UnmappedMeter("no numeric retailPrice") from exc
    if price < 0:
        raise UnmappedMeter("negative retailPrice")
    try:
        start = date.fromisoformat(str(item.get("effectiveStartDate", ""))[:10])
    except ValueError as exc:
        raise UnmappedMeter("no effectiveStartDate") from exc
    model = meaning.model
    if resolve_model is not None:
        model = resolve_model(model, start) or model
    region = None
    if meaning.deployment_type == STANDARD:
        arm_region = str(item.get("armRegionName", "")).strip()
        if not arm_region:
            raise UnmappedMeter("regional meter without armRegionName")
        region = normalize_region(arm_region)
    return (model, meaning.deployment_type, region, start), meaning.kind, price


def _decimal_text(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros: 2.500 -> "2.5", 1E+1 -> "10"."""
    return format(value.normalize(), "f")


def _render(
    entries: Mapping[tuple[str, str, str | None, date], Mapping[str, tuple[Decimal, str]]],
    *,
    version: str,
    published: date,
    source_name: str,
) -> str:
    lines = [
        "# Imported from the Azure Retail Prices API by `meter pricing import-azure-retail`.",
        "# Review before use: meter names are read word by word, and the API only gives current prices.",
        "",
        "[table]",
        f'version = "{version}"',
        f"published = {published.isoformat()}",
        'currency = "USD"',
        "",
        "[sources]",
        f'retail = "Azure Retail Prices API, https://prices.azure.com/api/retail/prices ({_escape(source_name)})"',
        "",
    ]
    until = _successors(entries)
    for key in sorted(entries, key=lambda k: (k[0], k[1], k[2] or "", k[3])):
        model, dtype, region, start = key
        kinds = entries[key]
        lines.append("[[price]]")
        lines.append(f'model = "{_escape(model)}"')
        lines.append(f'deployment_type = "{dtype}"')
        if region:
            lines.append(f'region = "{region}"')
        lines.append(f"effective_from = {start.isoformat()}")
        if key in until:
            lines.append(f"effective_until = {until[key].isoformat()}")
        for kind in KINDS:
            if kind in kinds:
                lines.append(f'{kind} = "{_decimal_text(kinds[kind][0])}"')
        lines.append('source = "retail"')
        meters = "; ".join(sorted({name for _, name in kinds.values()}))
        lines.append(f'note = "meters: {_escape(meters)}"')
        lines.append("")
    return "\n".join(lines)


def _successors(
    keys: Iterable[tuple[str, str, str | None, date]],
) -> dict[tuple[str, str, str | None, date], date]:
    """An older entry of the same (model, type, region) ends where the next one starts."""
    by_series: dict[tuple[str, str, str | None], list[date]] = {}
    for model, dtype, region, start in keys:
        by_series.setdefault((model, dtype, region), []).append(start)
    out: dict[tuple[str, str, str | None, date], date] = {}
    for (model, dtype, region), starts in by_series.items():
        ordered = sorted(starts)
        for older, newer in itertools.pairwise(ordered):
            out[(model, dtype, region, older)] = newer
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
