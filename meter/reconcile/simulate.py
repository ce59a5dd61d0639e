"""A SIMULATED Azure cost export of the demo's run, for trying ``meter reconcile`` without an Azure bill.

The demo's emulator keeps its own bill: every answered request and the usage it charged
(also for a stream the client abandoned, or a prompt the content filter refused). This writes
that bill as Azure would, in the EA cost-details columns: one row per UTC day and meter, the
meter names Azure's Retail Prices API uses (read from the notes of meter's own Retail table),
``Quantity`` in tokens, priced at the list prices in meter's tables. It is labelled in the
file itself (``SubscriptionName``, ``AdditionalInfo``) as simulated, never an Azure bill.

Each entry is billed at the deployment type Azure bills it at: a Batch line at the Batch type, a
call served at the Priority or Flex tier at that tier's type; audio and images in their own usage
shape, and the built-in tool calls the emulator billed with an answer. A kind Azure has no meter
for (web search) is left out, as meter leaves it unpriced.

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

from meter.core.observe_media import media_usage
from meter.core.record import USAGE_KINDS, Usage
from meter.core.usage import cap_subsets, from_chat, from_responses
from meter.pricing import PriceBook
from meter.pricing.book import builtin_table_paths
from meter.pricing.meters import UnmappedMeter, parse_meter

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
    tools = entry.get("tools")
    if usage is not None and isinstance(tools, dict) and tools:
        usage = dataclasses.replace(usage, **{k: v for k, v in tools.items() if k in _TOOL_KINDS})
    return usage


_TOOL_KINDS = frozenset(k.name for k in USAGE_KINDS if k.counted_from == "output")


def _unit(meter: str) -> tuple[str, int]:
    return ("1M", 1_000_000) if "1m" in meter.lower().split() else ("1K", 1000)


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
        if deployment is None or usage is None:
            continue
        usage = cap_subsets(usage)  # as the meter prices it: the service bills no subset above its total
        at = datetime.fromtimestamp(float(entry["at"]), UTC)
        dtype = billed_type(entry, deployment.deployment_type)
        cost = book.cost_of(usage, model=deployment.model, deployment_type=dtype,
                            region=str(deployment.region).replace(" ", "").lower(), at=at)
        if cost.model is None:
            continue
        for kind, amount in cost.amounts.items():
            meter = names.get((cost.model, kind, dtype))
            if meter is None or amount is None:
                continue  # a kind without an Azure meter (web search): the export cannot bill what Azure names not
            key = (at.date(), meter, cost.model)
            sums[key] = (sums[key][0] + cost.tokens.get(kind, 0), sums[key][1] + amount)
    rows = []
    for (day, meter, model), (tokens, listed) in sorted(sums.items()):
        amount = listed * DISCOUNT if "discount" in plants and model == "gpt-5" else listed
        unit, block = _unit(meter)
        price = amount / tokens * block if tokens else Decimal(0)
        rows.append(_row(day, meter, unit, tokens, price, amount, "OnDemand"))
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
