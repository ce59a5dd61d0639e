"""A SIMULATED Azure cost export of the demo's run, for trying ``meter reconcile`` without an Azure bill.

The demo's emulator keeps its own bill: every answered request and the usage it charged
(also for a stream the client abandoned, or a prompt the content filter refused). This writes
that bill as Azure would, in the EA cost-details columns: one row per UTC day and meter, the
meter names Azure's Retail Prices API uses (read from the notes of meter's own Retail table),
``Quantity`` in tokens, priced at the list prices in meter's tables. It is labelled in the
file itself (``SubscriptionName``, ``AdditionalInfo``) as simulated, never an Azure bill.

Each entry is billed at the deployment type Azure bills it at: a Batch line at the Batch type, a
call served at the Priority or Flex tier at that tier's type; audio and images in their own usage
shape, and the built-in tool calls the emulator billed with an answer. Each under its real meter
name and unit of measure: the tools' fees under ``built-in-tools`` at the fee's deployment type
(``file-search-tool-calls-glbl Calls`` per ``1K``, ``Code-Interpreter-global Session`` per ``1``),
whisper's seconds as hours (``Speech-to-Text-Batch-Whisper-glbl Unit``, ``1 Hour``), dall-e-3's
images per ``100``, tokens per ``1K`` or ``1M`` as the meter's name says; a model's output its meter
bills with another kind (gpt-image-1's, a speech model's) under that meter. A kind Azure has no
meter for (web search, tts-1's characters) is left out, as meter leaves it unpriced.

``plant`` adds known differences, each of a kind ``meter reconcile`` must find:
``discount`` (gpt-5 billed 15 % below list, as a negotiated price), ``unknown-meter`` (a row
whose meter name no parser reads) and ``ptu`` (a day of a provisioned deployment's hours).
Unmetered traffic is planted by the demo itself: real calls to the emulator, not wrapped.
"""

from __future__ import annotations

import csv
import dataclasses
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from meter.core.observe_media import media_usage, seconds_of
from meter.core.record import USAGE_KINDS, Usage
from meter.core.units import Units, image_variant
from meter.core.usage import cap_subsets, from_chat, from_responses
from meter.pricing import PriceBook
from meter.pricing.book import builtin_table_paths, fee_deployment_type
from meter.pricing.meters import UnmappedMeter, billed_kind, parse_meter
from meter.pricing.model import ANY_MODEL_KINDS, PRICE_KINDS, TOOLS_MODEL

RESOURCE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/meter-demo/providers/"
               "Microsoft.CognitiveServices/accounts/meter-demo")
PLANTS = ("discount", "unknown-meter", "ptu")
DISCOUNT = Decimal("0.85")

COLUMNS = ("BillingAccountName", "SubscriptionId", "SubscriptionName", "ResourceGroup", "ResourceLocation", "Date",
           "ProductName", "MeterCategory", "MeterSubCategory", "MeterId", "MeterName", "MeterRegion",
           "UnitOfMeasure", "Quantity", "EffectivePrice", "CostInBillingCurrency", "BillingCurrencyCode",
           "ResourceId", "ResourceName", "Tags", "ChargeType", "PricingModel", "PayGPrice", "UnitPrice",
           "AdditionalInfo")


def meter_names() -> dict[tuple[str, str, str], str]:
    """(model, token class, deployment type) -> an Azure meter name for it, from the Retail table's notes."""
    names: dict[tuple[str, str, str], str] = {}
    for path in builtin_table_paths():
        with path.open("rb") as f:
            data = tomllib.load(f)
        for price in data.get("price", []):
            note = str(price.get("note", ""))
            if not note.startswith("meters: "):
                continue
            for name in note.removeprefix("meters: ").split("; "):
                try:
                    key = parse_meter(name)
                except UnmappedMeter:
                    continue
                if not key.above_input_tokens:
                    names.setdefault((key.model, key.kind, key.deployment_type), name)
    return names


_TIER_TYPES = {("priority", "GlobalStandard"): "GlobalPriority", ("priority", "DataZoneStandard"): "DataZonePriority",
               ("flex", "GlobalStandard"): "GlobalFlex"}
_BATCH_TYPES = {"GlobalStandard": "GlobalBatch", "DataZoneStandard": "DataZoneBatch"}
_MEDIA_APIS = ("transcriptions", "translations", "speech", "images")


def billed_type(entry: Mapping[str, Any], deployment_type: str) -> str:
    """The deployment type Azure bills an emulator ledger entry at: a Batch line at the Batch type, a call served
    at the Priority or Flex tier at that tier's type, anything else at its deployment's."""
    if entry.get("operation") == "batch":
        return _BATCH_TYPES.get(deployment_type, deployment_type)
    tier = entry.get("service_tier")
    return _TIER_TYPES.get((str(tier), deployment_type), deployment_type)


def _usage(entry: Mapping[str, Any]) -> Usage | None:
    """An entry's token usage in the shape its endpoint answers, with the tool calls it billed."""
    api, raw = entry.get("api"), entry.get("usage")
    read = media_usage if api in _MEDIA_APIS else from_responses if api == "responses" else from_chat
    usage = read(raw)
    if usage is not None and api == "speech" and not usage.audio_output_tokens:
        usage = dataclasses.replace(usage, audio_output_tokens=usage.output_tokens)  # speech's output is audio
    tools = entry.get("tools")
    if usage is not None and isinstance(tools, dict) and tools:
        usage = dataclasses.replace(usage, **{k: v for k, v in tools.items() if k in _TOOL_KINDS})
    return usage


_TOOL_KINDS = frozenset(k.name for k in USAGE_KINDS if k.counted_from == "output")
_UNIT_OF = {kind.name: kind.unit for kind in PRICE_KINDS}


def _units(entry: Mapping[str, Any]) -> Units | None:
    """What an entry billed by its units (whisper's seconds, tts-1's characters, dall-e-3's images), if that."""
    raw = entry.get("usage")
    if not isinstance(raw, dict):
        return None
    what = raw.get("type")
    if what == "duration" and seconds_of(raw.get("seconds")):
        return Units(audio_seconds=float(raw["seconds"]))
    if what == "characters" and isinstance(raw.get("characters"), int) and raw["characters"] > 0:
        return Units(speech_characters=raw["characters"])
    if what == "images" and isinstance(raw.get("images"), int) and raw["images"] > 0:
        return Units(images=raw["images"], image_variant=image_variant(raw.get("quality"), raw.get("size")))
    return None


def _unit(meter: str, kind: str) -> tuple[str, int, Decimal]:
    """A meter's unit of measure, the quantity one block of it holds, and how many of the kind's quantities one unit
    of the row's ``Quantity`` is (whisper's ``Quantity`` counts hours: 3,600 seconds each)."""
    unit = _UNIT_OF.get(kind, "tokens")
    if unit == "seconds":
        return "1 Hour", 1, Decimal(3600)
    if unit == "calls":
        return "1K", 1000, Decimal(1)
    if unit == "sessions":
        return "1", 1, Decimal(1)
    if unit == "images":
        return "100", 100, Decimal(1)
    if unit == "characters" or "1m" in meter.lower().split():
        return "1M", 1_000_000, Decimal(1)
    return "1K", 1000, Decimal(1)


def write_export(path: str | Path, entries: Iterable[Mapping[str, Any]], deployments: Mapping[str, Any],
                 plant: Iterable[str] = (), book: PriceBook | None = None) -> int:
    """Write the export; returns its rows. ``deployments``: name -> emulator ``Deployment`` (its model, type
    and region price the calls)."""
    book = book or PriceBook.load()
    plants = set(plant)
    names = meter_names()
    sums: dict[tuple[date, str, str], tuple[Decimal, Decimal]] = defaultdict(lambda: (Decimal(0), Decimal(0)))
    for entry in entries:
        deployment = deployments.get(str(entry.get("deployment")))
        usage = _usage(entry)
        units = _units(entry) if usage is None else None
        if deployment is None or (usage is None and units is None):
            continue
        if usage is not None:
            usage = cap_subsets(usage)  # as the meter prices it: the service bills no subset above its total
        at = datetime.fromtimestamp(float(entry["at"]), UTC)
        dtype = billed_type(entry, deployment.deployment_type)
        cost = book.cost_of(usage, model=deployment.model, deployment_type=dtype,
                            region=str(deployment.region).replace(" ", "").lower(), at=at,
                            units=units.price_units() if units is not None else None)
        if cost.model is None:
            continue
        for kind, amount in cost.amounts.items():
            if kind in ANY_MODEL_KINDS:  # a built-in tool's fee: its own meter, for every model
                model, key = TOOLS_MODEL, (TOOLS_MODEL, kind, fee_deployment_type(dtype))
            else:
                model, key = cost.model, (cost.model, billed_kind(cost.model, kind), dtype)
            meter = names.get(key)
            if meter is None or amount is None:
                continue  # a kind without an Azure meter (web search): the export cannot bill what Azure names not
            row = (at.date(), meter, model)
            sums[row] = (sums[row][0] + Decimal(str(cost.tokens.get(kind, 0))), sums[row][1] + amount)
    rows = []
    for (day, meter, model), (quantity, listed) in sorted(sums.items()):
        amount = listed * DISCOUNT if "discount" in plants and model == "gpt-5" else listed
        unit, block, per_quantity = _unit(meter, parse_meter(meter).kind)
        quantity = quantity / per_quantity  # whisper: seconds -> hours
        price = amount / quantity * block if quantity else Decimal(0)
        rows.append(_row(day, meter, unit, quantity.normalize(), price, amount, "OnDemand"))
    days = sorted({day for day, _, _ in sums}) or [datetime.now(UTC).date()]
    if "unknown-meter" in plants:
        rows.append(_row(days[0], "gpt 9 ultra 0101 Inp glbl Tokens", "1K", Decimal(300), Decimal("0.004"),
                         Decimal("0.0012"), "OnDemand"))
    if "ptu" in plants:
        rows.append(_row(days[0], "Provisioned Managed Global", "1 Hour", Decimal(24 * 15), Decimal(1),
                         Decimal(360), "OnDemand"))
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return len(rows)


def _row(day: date, meter: str, unit: str, quantity: Decimal, price: Decimal, cost: Decimal,
         pricing_model: str) -> list[str]:
    return ["meter demo", "00000000-0000-0000-0000-000000000000",
            "meter demo (SIMULATED export, not an Azure bill)", "meter-demo", "eastus2",
            f"{day.month:02d}/{day.day:02d}/{day.year}", "Azure OpenAI", "Cognitive Services", "Azure OpenAI", "",
            meter, "East US 2", unit, format(quantity, "f"), format(price.normalize(), "f"), format(cost, "f"), "USD",
            RESOURCE_ID, "meter-demo", "", "Usage", pricing_model, format(price.normalize(), "f"),
            format(price.normalize(), "f"), '{"simulated": true, "by": "meter demo"}']
