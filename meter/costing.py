"""Pricing a record: which model, deployment type and region, at what time.

The price book (``pricing``) knows prices; only meter knows the call. This
module picks the pricing key from what the call says and what the user told
meter about their deployments, then asks the book. Deployment names on Azure
are free-form aliases, so the model is chosen in this order, first one the book
knows wins:

1. the served model from the response, when it is a dated id (exact version);
2. the model the user mapped the deployment to (``Meter(deployments=...)``);
3. the served model as reported (e.g. an undated family name);
4. the deployment name itself (deployments are often named after the model).

The deployment type and region come from the user's map; without one the book
prices Global Standard and flags the type as assumed. A provisioned (PTU)
deployment whose call spilled over (``x-ms-is-spilled-over: true``) was served,
and billed, per token by the matching standard deployment type.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeAlias

from meter.core.record import AzureHeaders, Usage
from meter.core.units import Units
from meter.pricing import Cost, DeploymentInfo, PriceBook, canonical_deployment_type, load_deployment_map

DEPLOYMENTS_ENV = "METER_DEPLOYMENTS"
"""Environment variable: a deployment map file path, or the map as JSON text."""

_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_SPILLOVER_TARGET = {
    "GlobalProvisionedManaged": "GlobalStandard",
    "DataZoneProvisionedManaged": "DataZoneStandard",
    "ProvisionedManaged": "Standard",
}

_TIER_TYPES = {
    ("priority", "GlobalStandard"): "GlobalPriority",
    ("priority", "DataZoneStandard"): "DataZonePriority",
    ("flex", "GlobalStandard"): "GlobalFlex",
}
"""The deployment type a call served at a tier is billed as: Priority and Flex have meters of their own
on Global (and Data Zone for Priority) deployments; other pairs keep their deployment's type."""

_BATCH_TYPES = {"GlobalStandard": "GlobalBatch", "DataZoneStandard": "DataZoneBatch"}
"""The deployment type a Batch job on a deployment of this type is billed as."""

DeploymentSpec = DeploymentInfo | str | Mapping[str, Any] | tuple[str, ...]


def _info(name: str, spec: DeploymentSpec) -> DeploymentInfo:
    if isinstance(spec, DeploymentInfo):
        return spec
    if isinstance(spec, str):
        return DeploymentInfo(model=spec)
    if isinstance(spec, tuple):
        dtype = spec[1] if len(spec) > 1 else None
        return DeploymentInfo(model=spec[0], deployment_type=canonical_deployment_type(dtype) if dtype else None,
                              region=spec[2] if len(spec) > 2 else None)
    dtype = spec.get("deployment_type")
    return DeploymentInfo(
        model=str(spec["model"]),
        deployment_type=canonical_deployment_type(str(dtype)) if dtype else None,
        region=spec.get("region"),
    )


def load_deployments(source: Mapping[str, DeploymentSpec] | str | os.PathLike[str] | None) -> dict[str, DeploymentInfo]:
    """The deployment map from a mapping, a file, JSON text, or (when ``None``) ``$METER_DEPLOYMENTS``."""
    if source is None:
        env = os.environ.get(DEPLOYMENTS_ENV)
        return load_deployment_map(env, origin="$" + DEPLOYMENTS_ENV) if env else {}
    if isinstance(source, Mapping):
        return {name: _info(name, spec) for name, spec in source.items()}
    return load_deployment_map(source)


def region_key(header_region: str | None) -> str | None:
    """Azure's ``x-ms-region: East US 2`` as an ARM region name (``eastus2``)."""
    if not header_region:
        return None
    return header_region.replace(" ", "").lower()


CallCost: TypeAlias = tuple[Cost | None, str | None, str | None]
"""What ``Costing.cost_of_call`` returns: a call's cost (``None`` without usage), then the deployment type
and the region it was priced for. A plain tuple: it is built once per call, in the hot path."""


class Costing:
    """Turns a call's usage into a ``CallCost`` (its ``meter.pricing.Cost``, ``None`` when there is no usage)."""

    def __init__(self, book: PriceBook, deployments: Mapping[str, DeploymentInfo]) -> None:
        self.book = book
        self.deployments = dict(deployments)
        self._chosen: dict[tuple[str | None, str | None, str | None, date], str | None] = {}
        """Model choice per (served, deployment, mapped model, day): resolving is the slow part."""

    def cost_of_call(
        self,
        deployment: str | None,
        response_model: str | None,
        usage: Usage | None,
        estimated: bool,
        at: datetime,
        azure: AzureHeaders,
        service_tier: str | None = None,
        units: Units | None = None,
        batch: bool = False,
    ) -> CallCost:
        """The cost (``None`` without usage), the deployment type and the region a call is priced for.

        Not ``price``: ``PriceBook.cost_of`` prices usage alone; this picks the model, type and region
        of a call first, and says which it used. A call served at the Priority or Flex tier is priced
        at that tier's deployment type (``GlobalPriority`` ...); without a mapped deployment type it is
        the Global one, flagged assumed as any Global Standard guess is."""
        mapped = self.deployments.get(deployment) if deployment else None
        deployment_type = mapped.deployment_type if mapped else None
        region = (mapped.region if mapped else None) or region_key(azure.region)
        if azure.spilled_over and deployment_type in _SPILLOVER_TARGET:
            deployment_type = _SPILLOVER_TARGET[deployment_type]
        assumed = False
        if batch:  # a Batch output file: its lines are billed at the Batch type of the deployment's
            batch_type = _BATCH_TYPES.get(deployment_type or "GlobalStandard")
            if batch_type is not None:
                assumed = deployment_type is None
                deployment_type = batch_type
        elif service_tier == "priority" or service_tier == "flex":
            tier_type = _TIER_TYPES.get((service_tier, deployment_type or "GlobalStandard"))
            if tier_type is not None:
                assumed = deployment_type is None
                deployment_type = tier_type
        if usage is None and units is None:
            return None, deployment_type, region
        model = self._model(response_model, deployment, mapped, at)
        cost: Cost = self.book.cost_of(
            usage,
            model=model,
            deployment_type=deployment_type,
            region=region,
            at=at,
            estimated=estimated,
            units=None if units is None else units.price_units(),
        )
        if assumed:
            cost = dataclasses.replace(cost, assumed_deployment_type=True)
        return cost, cost.deployment_type or deployment_type, region

    def pricing_key(self, deployment: str | None, at: datetime, service_tier: str | None = None
                    ) -> tuple[str | None, str | None, str | None]:
        """The model, deployment type and region a call to ``deployment`` would be priced at before it is
        sent (a budget's worst case): the mapped model, else the deployment name; the tier's type."""
        mapped = self.deployments.get(deployment) if deployment else None
        deployment_type = mapped.deployment_type if mapped else None
        if service_tier == "priority" or service_tier == "flex":
            deployment_type = _TIER_TYPES.get((service_tier, deployment_type or "GlobalStandard"), deployment_type)
        return self._model(None, deployment, mapped, at), deployment_type, mapped.region if mapped else None

    def _model(self, served: str | None, deployment: str | None, mapped: DeploymentInfo | None,
               at: datetime) -> str | None:
        key = (served, deployment, mapped.model if mapped else None, at.date())
        try:
            return self._chosen[key]
        except KeyError:
            pass
        if len(self._chosen) > 4096:
            self._chosen.clear()
        chosen = self._chosen[key] = self._choose(served, deployment, mapped, at)
        return chosen

    def _choose(self, served: str | None, deployment: str | None, mapped: DeploymentInfo | None,
                at: datetime) -> str | None:
        candidates = []
        if served and _DATED.search(served):
            candidates.append(served)
        if mapped is not None:
            candidates.append(mapped.model)
        if served:
            candidates.append(served)
        if deployment:
            candidates.append(deployment)
        for name in candidates:
            if self.book.resolve_model(name, at) is not None:
                return name
        # None of them is known: price the best guess so the book reports it as unknown.
        return candidates[0] if candidates else None
