"""The cost-export schemas meter reads, as data: which column holds each thing reconciliation needs.

Azure Cost Management writes cost details in three shapes (``../shared/facts/azure-billing-exports.md``):
EA (PascalCase: ``Date``, ``MeterName``, ``CostInBillingCurrency``), MCA (camelCase: ``date``,
``meterName``, ``costInBillingCurrency``, plus ``costInUsd``) and FOCUS 1.0 / 1.2
(``ChargePeriodStart``, ``SkuMeter`` or ``x_SkuMeterName``, ``BilledCost``, ``x_PricingBlockSize``, and
``x_BilledCostInUsd`` when the billing currency is not USD).
The schema is told by the header alone; a header that is none of them is refused with the
columns each would need. Cost columns are optional: a usage-only file (no cost, no price) is
reconciled on quantities. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FIELDS = ("day", "resource_id", "resource_name", "meter_name", "meter_category", "meter_subcategory", "product",
          "unit", "quantity", "cost", "currency", "price", "pricing_model", "charge_type", "block_size",
          "cost_usd", "charge_class", "location", "tags")
"""What a row says, in meter's words; each schema maps some of them to its columns."""

REQUIRED = ("day", "meter_name", "quantity", "resource_id")


@dataclass(frozen=True)
class Schema:
    name: str
    columns: dict[str, tuple[str, ...]]
    """Field -> the column names that may hold it, first found wins (names vary across schema versions)."""
    signature: str
    """The column whose exact spelling says this schema."""


EA = Schema("EA cost details", {
    "day": ("Date", "UsageDate"), "resource_id": ("ResourceId", "InstanceId"), "resource_name": ("ResourceName",),
    "meter_name": ("MeterName",), "meter_category": ("MeterCategory",), "meter_subcategory": ("MeterSubCategory",),
    "product": ("ProductName", "Product"), "unit": ("UnitOfMeasure",), "quantity": ("Quantity",),
    "cost": ("CostInBillingCurrency", "Cost"), "currency": ("BillingCurrencyCode", "BillingCurrency"),
    "price": ("EffectivePrice",), "pricing_model": ("PricingModel",), "charge_type": ("ChargeType",),
    "location": ("ResourceLocation",), "tags": ("Tags",),
}, "Date")

MCA = Schema("MCA cost details", {
    "day": ("date",), "resource_id": ("resourceId", "instanceName"), "resource_name": ("resourceName",),
    "meter_name": ("meterName",), "meter_category": ("meterCategory",), "meter_subcategory": ("meterSubCategory",),
    "product": ("productName", "product"), "unit": ("unitOfMeasure",), "quantity": ("quantity",),
    "cost": ("costInBillingCurrency",), "currency": ("billingCurrency", "billingCurrencyCode"),
    "price": ("effectivePrice",), "pricing_model": ("pricingModel",), "charge_type": ("chargeType",),
    "cost_usd": ("costInUsd",), "location": ("resourceLocation",), "tags": ("tags",),
}, "date")

FOCUS = Schema("FOCUS", {
    "day": ("ChargePeriodStart",), "resource_id": ("ResourceId",), "resource_name": ("ResourceName",),
    "meter_name": ("SkuMeter", "x_SkuMeterName"), "meter_category": ("x_SkuMeterCategory", "ServiceName"),
    "meter_subcategory": ("x_SkuMeterSubcategory",), "product": ("x_SkuDescription",),
    "unit": ("ConsumedUnit",), "quantity": ("ConsumedQuantity",), "cost": ("BilledCost",),
    "currency": ("BillingCurrency",), "price": ("x_EffectiveUnitPrice",), "pricing_model": ("PricingCategory",),
    "charge_type": ("ChargeCategory",), "block_size": ("x_PricingBlockSize",), "charge_class": ("ChargeClass",),
    "location": ("RegionId", "RegionName"), "cost_usd": ("x_BilledCostInUsd",), "tags": ("Tags",),
}, "ChargePeriodStart")

SCHEMAS = (FOCUS, EA, MCA)


class HeaderProblem(ValueError):
    """The header is no export meter reads: ``column`` is the one to name (``""`` for the header as a whole)."""

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(problem)
        self.column = column


@dataclass(frozen=True)
class Layout:
    """One file's header read against its schema: the index of each field's column (absent: not there)."""

    schema: Schema
    index: dict[str, int]
    names: dict[str, str]
    """Field -> the column name this file uses (for messages that name the column)."""


def read_header(header: Sequence[str]) -> Layout:
    """The layout of a file from its header; ``HeaderProblem`` when it is not a cost export."""
    cells = [cell.strip().lstrip("\ufeff") for cell in header]
    present = {cell: i for i, cell in enumerate(cells)}
    schema = next((s for s in SCHEMAS if s.signature in present), None)
    if schema is None:
        lowered = {cell.lower() for cell in cells}
        if {"date", "metername", "quantity"} <= lowered or "chargeperiodstart" in lowered:
            raise HeaderProblem("", "the columns are named like a cost export but not in any schema's casing "
                                    "(EA: Date, MeterName; MCA: date, meterName; FOCUS: ChargePeriodStart)")
        raise HeaderProblem("", "not an Azure cost export: the header has none of Date (EA), date (MCA), "
                                "ChargePeriodStart (FOCUS)")
    index: dict[str, int] = {}
    names: dict[str, str] = {}
    for field, candidates in schema.columns.items():
        for column in candidates:
            if column in present:
                index[field] = present[column]
                names[field] = column
                break
    for field in REQUIRED:
        if field not in index:
            raise HeaderProblem(schema.columns[field][0], f"missing: {schema.name} files need the column "
                                                          f"{' or '.join(schema.columns[field])}")
    return Layout(schema, index, names)
