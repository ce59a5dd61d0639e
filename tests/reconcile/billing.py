"""Cost exports built by the tests, from the documented columns of each schema, and the workloads they bill.

Independent of meter's reader: the columns are listed here from Microsoft's schema pages
(EA and MCA cost details, FOCUS 1.0 and 1.2), the meter names and list prices come from
Retail Prices answers in ``tests/fixtures/azure-retail/reconcile-sample.json``, and the
token classes are read here from the emulator's own bill (its wire-format usage). A workload
is real: the openai SDK, wrapped by meter with a SQLite ledger, against the emulator on a
loopback port.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
from prometheus_client import CollectorRegistry

import meter
from meter.apps.emulator import Emulator, EmulatorConfig
from meter.apps.emulator.config import DEFAULT_DEPLOYMENTS, Deployment
from meter.pricing import DeploymentInfo

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "azure-retail" / "reconcile-sample.json"
RESOURCE_ID = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/ai/providers/" \
              "Microsoft.CognitiveServices/accounts/aoai-test"
RESOURCE = "aoai-test"
PTU = Deployment("gpt-4o-ptu", "gpt-4o-2024-11-20", "ProvisionedManaged")
DEPLOYMENTS = (*DEFAULT_DEPLOYMENTS, PTU)
API_VERSION = "2024-10-21"

METERS = {  # deployment -> token class -> the Retail meter name
    "gpt-4o-mini": {"input": "gpt-4o-mini-0718-Inp-glbl Tokens",
                    "cached_input": "gpt 4o mini 0718 cached Inp glbl Tokens",
                    "output": "gpt-4o-mini-0718-Outp-glbl Tokens"},
    "gpt-5": {"input": "GPT 5 Inpt Glbl 1M Tokens", "cached_input": "GPT 5 cchd Inpt Glbl 1M Tokens",
              "output": "GPT 5 outpt Glbl 1M Tokens"},
    "o4-mini": {"input": "o4-mini 0416 Inp Data Zone Tokens", "cached_input": "o4-mini 0416 cached Inp DataZone Tokens",
                "output": "o4-mini 0416 Outp Data Zone Tokens"},
    "text-embedding-3-small": {"input": "text-embedding-3-small-regional Tokens"},
}
PTU_METER = "Provisioned Managed Global"


def retail() -> dict[str, tuple[str, int, Decimal]]:
    """Meter name -> (unit of measure, tokens per unit, list price per unit), from the Retail answer."""
    items = json.loads(FIXTURE.read_text(), parse_float=Decimal)["Items"]
    blocks = {"1K": 1000, "1M": 1_000_000, "1 Hour": 1}
    return {i["meterName"]: (i["unitOfMeasure"], blocks[i["unitOfMeasure"]], Decimal(i["retailPrice"])) for i in items}


@dataclass
class Workload:
    ledger: Any
    """A SQLite path or a PostgreSQL URL."""
    entries: list[dict[str, Any]]
    records: list[meter.CallRecord]
    unmetered: list[str] = field(default_factory=list)
    """Request ids of the calls made without meter."""


def run_workload(folder: Path, *, deployment_types: dict[str, str] | None = None, unmetered: int = 0,
                 ptu_calls: int = 0, ledger_url: str | None = None) -> Workload:
    """Metered calls on every deployment (and ``unmetered`` plain calls), against a fresh emulator; the
    ledger is a SQLite file in ``folder``, or ``ledger_url``."""
    config = EmulatorConfig(deployments=DEPLOYMENTS)
    types = deployment_types or {}
    records: list[meter.CallRecord] = []
    ledger: Any = ledger_url or folder / "ledger.sqlite"
    with Emulator(config) as emulator:
        m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=ledger, on_record=records.append,
                        deployments={d.name: DeploymentInfo(d.model, types.get(d.name, d.deployment_type), "eastus2")
                                     for d in config.deployments})
        key = config.api_key
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=emulator.url, api_key=key, api_version=API_VERSION,
                                               max_retries=0), meter=m)
        long = "Explain the difference between a ledger and a journal. " * 40
        for text in ("one", "two", "three"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}],
                                           max_tokens=30)
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "s"}],
                                                stream=True, stream_options={"include_usage": True}):
            pass
        for _ in range(2):  # the second is served from the prompt cache
            client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": long}])
        client.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "think"}])
        client.embeddings.create(model="text-embedding-3-small", input=["a ledger", "a journal"])
        for _ in range(ptu_calls):
            client.chat.completions.create(model="gpt-4o-ptu", messages=[{"role": "user", "content": "ptu"}])
        client.close()
        assert m.close()
        before = len(emulator.usage_log)
        plain = openai.AzureOpenAI(azure_endpoint=emulator.url, api_key=key, api_version=API_VERSION, max_retries=0)
        for i in range(unmetered):
            plain.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"plain {i}"}],
                                          max_tokens=30)
        plain.close()
        entries = [dict(e) for e in emulator.usage_log]
    return Workload(ledger, entries, records, [e["request_id"] for e in entries[before:]])


def classes(entry: dict[str, Any]) -> dict[str, int]:
    """The token classes Azure bills for one request, from the emulator's wire-format usage."""
    usage = entry.get("usage") or {}
    if entry["api"] == "responses":
        prompt, cached, output = (usage.get("input_tokens", 0), (usage.get("input_tokens_details") or {}).get(
            "cached_tokens", 0), usage.get("output_tokens", 0))
    else:
        prompt, cached, output = (usage.get("prompt_tokens", 0), (usage.get("prompt_tokens_details") or {}).get(
            "cached_tokens", 0), usage.get("completion_tokens", 0))
    return {k: v for k, v in {"input": prompt - cached, "cached_input": cached, "output": output}.items() if v}


@dataclass
class Charge:
    day: date
    meter: str
    quantity: Decimal
    """Tokens (or hours for a commitment)."""
    unit: str
    block: int
    price: Decimal
    """Per unit of measure."""
    pricing_model: str = "OnDemand"
    resource_id: str = RESOURCE_ID
    tags: str = ""
    """The row's ``Tags`` cell (EA writes the pairs without braces)."""
    service: str = ""
    """Another Cognitive Service's subcategory (``Language``, ``Speech``): not Azure OpenAI."""

    @property
    def cost(self) -> Decimal:
        return self.quantity / self.block * self.price


def bill(entries: Iterable[dict[str, Any]], *, day_of: Callable[[dict[str, Any]], date] | None = None,
         price_of: Callable[[str, Decimal], Decimal] | None = None, ptu_hours: int = 0,
         extra: Iterable[Charge] = ()) -> list[Charge]:
    """What Azure would bill for the emulator's entries: one charge per UTC day and meter."""
    prices = retail()
    sums: dict[tuple[date, str], int] = defaultdict(int)
    for entry in entries:
        meters = METERS.get(entry["deployment"])
        if meters is None or not entry.get("usage"):
            continue
        day = day_of(entry) if day_of else datetime.fromtimestamp(entry["at"], UTC).date()
        for kind, count in classes(entry).items():
            sums[(day, meters[kind])] += count
    out = []
    for (day, name), count in sorted(sums.items()):
        unit, block, price = prices[name]
        out.append(Charge(day, name, Decimal(count), unit, block, price_of(name, price) if price_of else price))
    if ptu_hours:
        unit, block, price = prices[PTU_METER]
        out.append(Charge(out[0].day, PTU_METER, Decimal(ptu_hours), unit, block, price))
    out.extend(extra)
    return out


# The documented columns of each schema (a subset of each: every one meter reads, and others around them).
EA_COLUMNS = ("InvoiceSectionName", "AccountName", "SubscriptionId", "SubscriptionName", "ResourceGroup",
              "ResourceLocation", "Date", "ProductName", "MeterCategory", "MeterSubCategory", "MeterId", "MeterName",
              "MeterRegion", "UnitOfMeasure", "Quantity", "EffectivePrice", "CostInBillingCurrency",
              "BillingCurrencyCode", "ResourceId", "ResourceName", "Tags", "ChargeType", "PricingModel", "PayGPrice",
              "UnitPrice", "AdditionalInfo")
MCA_COLUMNS = ("invoiceSectionName", "billingAccountName", "subscriptionId", "subscriptionName", "resourceGroupName",
               "resourceLocation", "date", "productName", "meterCategory", "meterSubCategory", "meterId", "meterName",
               "meterRegion", "unitOfMeasure", "quantity", "effectivePrice", "costInBillingCurrency",
               "costInPricingCurrency", "costInUsd", "paygCostInBillingCurrency", "exchangeRatePricingToBilling",
               "billingCurrencyCode", "resourceId", "tags", "chargeType", "pricingModel", "additionalInfo")
FOCUS_10_COLUMNS = ("BilledCost", "BillingAccountId", "BillingCurrency", "ChargeCategory", "ChargeClass",
                    "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "EffectiveCost",
                    "PricingCategory", "PricingQuantity", "PricingUnit", "RegionId", "ResourceId", "ResourceName",
                    "ServiceName", "x_PricingBlockSize", "x_SkuMeterCategory", "x_SkuMeterId", "x_SkuMeterName",
                    "x_SkuMeterSubcategory", "x_EffectiveUnitPrice")
FOCUS_12_COLUMNS = tuple("SkuMeter" if c == "x_SkuMeterName" else c for c in FOCUS_10_COLUMNS)


def _ea_row(c: Charge, quantity: str, usage_only: bool) -> dict[str, str]:
    q = c.quantity / c.block if quantity == "blocks" else c.quantity
    return {"InvoiceSectionName": "ai", "AccountName": "contoso", "SubscriptionId": "11111111-2222",
            "SubscriptionName": "prod", "ResourceGroup": "ai", "ResourceLocation": "eastus2",
            "Date": f"{c.day.month:02d}/{c.day.day:02d}/{c.day.year}",
            "ProductName": f"{c.service} - Standard" if c.service else "Azure OpenAI",
            "MeterCategory": "Cognitive Services", "MeterSubCategory": c.service or "Azure OpenAI", "MeterId": "m-1",
            "MeterName": c.meter, "MeterRegion": "East US 2", "UnitOfMeasure": c.unit, "Quantity": format(q, "f"),
            "EffectivePrice": "" if usage_only else format(c.price, "f"),
            "CostInBillingCurrency": "" if usage_only else format(c.cost, "f"), "BillingCurrencyCode": "USD",
            "ResourceId": c.resource_id, "ResourceName": c.resource_id.rsplit("/", 1)[-1], "Tags": c.tags,
            "ChargeType": "Usage", "PricingModel": c.pricing_model, "PayGPrice": format(c.price, "f"),
            "UnitPrice": format(c.price, "f"), "AdditionalInfo": ""}


def write_ea(path: Path, charges: Iterable[Charge], *, quantity: str = "tokens", usage_only: bool = False,
             other_services: int = 1) -> Path:
    """EA cost details; ``usage_only`` drops the cost and price columns (a PAYG usage file)."""
    columns = [c for c in EA_COLUMNS if not usage_only or c not in ("EffectivePrice", "CostInBillingCurrency",
                                                                    "PayGPrice", "UnitPrice")]
    rows = [_ea_row(c, quantity, usage_only) for c in charges]
    for i in range(other_services):  # a row of another service: skipped
        rows.append({**rows[0], "MeterCategory": "Storage", "MeterSubCategory": "Blob", "ProductName": "Blob Storage",
                     "MeterName": "Hot LRS Data Stored", "ResourceId": "/subscriptions/x/providers/"
                     "Microsoft.Storage/storageAccounts/logs", "Quantity": str(10 + i)})
    _write(path, columns, rows)
    return path


MCA_COST_COLUMNS = ("effectivePrice", "costInBillingCurrency", "costInPricingCurrency", "costInUsd",
                    "paygCostInBillingCurrency")


def write_mca(path: Path, charges: Iterable[Charge], *, currency: str = "USD", rate: Decimal = Decimal(1),
              quantity: str = "tokens", usage_only: bool = False) -> Path:
    """MCA cost details: billed in ``currency`` at ``rate`` per USD, with ``costInUsd``; ``quantity`` tokens or
    price blocks (as real MCA rows: quantity x unit price = cost); ``usage_only`` drops the cost columns."""
    rows = []
    for c in charges:
        q = c.quantity / c.block if quantity == "blocks" else c.quantity
        rows.append({"invoiceSectionName": "ai", "billingAccountName": "contoso", "subscriptionId": "11111111-2222",
                     "subscriptionName": "prod", "resourceGroupName": "ai", "resourceLocation": "eastus2",
                     "date": f"{c.day.month:02d}/{c.day.day:02d}/{c.day.year}", "productName": "Azure OpenAI",
                     "meterCategory": "Foundry Models", "meterSubCategory": "Azure OpenAI", "meterId": "m-1",
                     "meterName": c.meter, "meterRegion": "East US 2", "unitOfMeasure": c.unit,
                     "quantity": format(q, "f"), "effectivePrice": format(c.price * rate, "f"),
                     "costInBillingCurrency": format(c.cost * rate, "f"), "costInPricingCurrency": format(c.cost, "f"),
                     "costInUsd": format(c.cost, "f"), "paygCostInBillingCurrency": format(c.cost * rate, "f"),
                     "exchangeRatePricingToBilling": format(rate, "f"), "billingCurrencyCode": currency,
                     "resourceId": c.resource_id, "tags": c.tags, "chargeType": "Usage",
                     "pricingModel": c.pricing_model, "additionalInfo": ""})
    _write(path, [c for c in MCA_COLUMNS if not usage_only or c not in MCA_COST_COLUMNS], rows)
    return path


def write_focus(path: Path, charges: Iterable[Charge], *, version: str = "1.2", currency: str = "USD",
                rate: Decimal = Decimal(1), usd_column: bool = True) -> Path:
    """FOCUS 1.0 or 1.2, billed in ``currency`` at ``rate`` per USD; Microsoft's ``x_BilledCostInUsd`` unless
    ``usd_column`` is false."""
    columns = [*(FOCUS_12_COLUMNS if version == "1.2" else FOCUS_10_COLUMNS), "Tags",
               *(["x_BilledCostInUsd"] if usd_column else [])]
    meter_column = "SkuMeter" if version == "1.2" else "x_SkuMeterName"
    rows = []
    for c in charges:
        start = datetime(c.day.year, c.day.month, c.day.day, tzinfo=UTC)
        rows.append({"BilledCost": format(c.cost * rate, "f"), "x_BilledCostInUsd": format(c.cost, "f"),
                     "Tags": c.tags, "BillingAccountId": "contoso", "BillingCurrency": currency,
                     "ChargeCategory": "Usage", "ChargeClass": "",
                     "ChargePeriodStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "ChargePeriodEnd": start.replace(hour=23, minute=59, second=59).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "ConsumedQuantity": format(c.quantity, "f"), "ConsumedUnit": "Tokens" if c.block > 1 else c.unit,
                     "EffectiveCost": format(c.cost * rate, "f"),
                     "PricingCategory": "Committed" if c.pricing_model == "Reservation" else "Standard",
                     "PricingQuantity": format(c.quantity / c.block, "f"), "PricingUnit": c.unit, "RegionId": "eastus2",
                     "ResourceId": c.resource_id, "ResourceName": c.resource_id.rsplit("/", 1)[-1],
                     "ServiceName": "Azure OpenAI", "x_PricingBlockSize": str(c.block),
                     "x_SkuMeterCategory": "Foundry Models", "x_SkuMeterId": "m-1", meter_column: c.meter,
                     "x_SkuMeterSubcategory": "Azure OpenAI", "x_EffectiveUnitPrice": format(c.price * rate, "f")})
    _write(path, columns, rows)
    return path


def _write(path: Path, columns: Iterable[str], rows: list[dict[str, str]]) -> None:
    columns = list(columns)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def split_gzip(source: Path, folder: Path, parts: int) -> list[Path]:
    """An export as Azure splits a large one: ``part_N.csv.gz`` files, each with the header."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(parts):
        path = folder / f"part_{i}_0001.csv.gz"
        with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
            f.write(header + "".join(body[i::parts]))
        out.append(path)
    return out
