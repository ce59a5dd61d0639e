"""Azure deployment types, named by Azure's own ARM SKU names.

Prices differ by deployment type, so the type is part of every price key. Users
write the type in config files and on the command line in many spellings
("Global Standard", "global-standard", "dz", "ptu"); everything is folded to one
canonical SKU name here so the rest of the package compares plain strings.

Priority processing is not a separate ARM SKU (it is a service tier enabled on a
GlobalStandard or DataZoneStandard deployment) but it has its own prices, so it
gets its own names here: ``GlobalPriority`` and ``DataZonePriority``. Flex processing (preview) is
the same kind of tier, on Global Standard deployments, with meters of its own: ``GlobalFlex``.
"""

from __future__ import annotations

GLOBAL_STANDARD = "GlobalStandard"
DATA_ZONE_STANDARD = "DataZoneStandard"
STANDARD = "Standard"
GLOBAL_BATCH = "GlobalBatch"
DATA_ZONE_BATCH = "DataZoneBatch"
GLOBAL_PRIORITY = "GlobalPriority"
DATA_ZONE_PRIORITY = "DataZonePriority"
GLOBAL_FLEX = "GlobalFlex"
GLOBAL_PROVISIONED = "GlobalProvisionedManaged"
DATA_ZONE_PROVISIONED = "DataZoneProvisionedManaged"
PROVISIONED = "ProvisionedManaged"

#: Every canonical deployment type, in display order.
DEPLOYMENT_TYPES: tuple[str, ...] = (
    GLOBAL_STANDARD,
    DATA_ZONE_STANDARD,
    STANDARD,
    GLOBAL_BATCH,
    DATA_ZONE_BATCH,
    GLOBAL_PRIORITY,
    DATA_ZONE_PRIORITY,
    GLOBAL_FLEX,
    GLOBAL_PROVISIONED,
    DATA_ZONE_PROVISIONED,
    PROVISIONED,
)

#: Billed per PTU-hour, not per token: the marginal token cost is 0.
PROVISIONED_TYPES: frozenset[str] = frozenset({GLOBAL_PROVISIONED, DATA_ZONE_PROVISIONED, PROVISIONED})

#: Priced per region (Regional Standard differs between regions).
REGIONAL_TYPES: frozenset[str] = frozenset({STANDARD})

#: The type assumed when the caller does not say (the Azure portal's default).
DEFAULT_DEPLOYMENT_TYPE = GLOBAL_STANDARD


def _fold(name: str) -> str:
    """Lower-case and drop separators so "Global Standard" == "global-standard"."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


_ALIASES: dict[str, str] = {_fold(t): t for t in DEPLOYMENT_TYPES}
_ALIASES.update(
    {
        "global": GLOBAL_STANDARD,
        "gs": GLOBAL_STANDARD,
        "datazone": DATA_ZONE_STANDARD,
        "dz": DATA_ZONE_STANDARD,
        "dzone": DATA_ZONE_STANDARD,
        "datazonestd": DATA_ZONE_STANDARD,
        "regional": STANDARD,
        "regionalstandard": STANDARD,
        "batch": GLOBAL_BATCH,
        "datazonebatch": DATA_ZONE_BATCH,
        "dzbatch": DATA_ZONE_BATCH,
        "priority": GLOBAL_PRIORITY,
        "globalstandardpriority": GLOBAL_PRIORITY,
        "dzpriority": DATA_ZONE_PRIORITY,
        "datazonestandardpriority": DATA_ZONE_PRIORITY,
        "flex": GLOBAL_FLEX,
        "globalstandardflex": GLOBAL_FLEX,
        "ptu": PROVISIONED,
        "provisioned": PROVISIONED,
        "regionalprovisioned": PROVISIONED,
        "globalprovisioned": GLOBAL_PROVISIONED,
        "globalptu": GLOBAL_PROVISIONED,
        "datazoneprovisioned": DATA_ZONE_PROVISIONED,
        "dzprovisioned": DATA_ZONE_PROVISIONED,
        "datazoneptu": DATA_ZONE_PROVISIONED,
    }
)


def canonical_deployment_type(name: str) -> str:
    """The canonical SKU name for ``name`` (case-insensitive, aliases allowed).

    Raises ``ValueError`` naming the accepted values when ``name`` is unknown, so a
    typo in a config file fails loudly instead of pricing at the wrong rate.
    """
    found = _ALIASES.get(_fold(name))
    if found is None:
        raise ValueError(
            f"unknown deployment type {name!r}; expected one of {', '.join(DEPLOYMENT_TYPES)}"
            " (case-insensitive; aliases such as 'global', 'datazone', 'regional', 'batch', 'ptu')"
        )
    return found


def is_provisioned(deployment_type: str) -> bool:
    """True for PTU deployment types (billed per hour, not per token)."""
    return deployment_type in PROVISIONED_TYPES


def is_regional(deployment_type: str) -> bool:
    """True for types whose price depends on the Azure region."""
    return deployment_type in REGIONAL_TYPES


def normalize_region(region: str) -> str:
    """Azure's ARM region name: "East US 2" and "eastus2" are the same region."""
    return "".join(ch for ch in region.lower() if ch.isalnum())
