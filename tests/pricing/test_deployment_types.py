"""Deployment type names: Azure SKU names, case-insensitive, with friendly aliases."""

from __future__ import annotations

import pytest

from meter.pricing import DEPLOYMENT_TYPES, canonical_deployment_type


@pytest.mark.parametrize("name", DEPLOYMENT_TYPES)
def test_canonical_names_round_trip(name: str) -> None:
    assert canonical_deployment_type(name) == name
    assert canonical_deployment_type(name.lower()) == name
    assert canonical_deployment_type(name.upper()) == name


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("Global Standard", "GlobalStandard"),
        ("global-standard", "GlobalStandard"),
        ("global", "GlobalStandard"),
        ("Data Zone Standard", "DataZoneStandard"),
        ("data_zone", "DataZoneStandard"),
        ("DZ", "DataZoneStandard"),
        ("regional", "Standard"),
        ("Regional Standard", "Standard"),
        ("batch", "GlobalBatch"),
        ("Global Batch", "GlobalBatch"),
        ("data-zone-batch", "DataZoneBatch"),
        ("priority", "GlobalPriority"),
        ("data zone priority", "DataZonePriority"),
        ("PTU", "ProvisionedManaged"),
        ("provisioned", "ProvisionedManaged"),
        ("global-provisioned", "GlobalProvisionedManaged"),
        ("datazone-ptu", "DataZoneProvisionedManaged"),
    ],
)
def test_aliases(alias: str, expected: str) -> None:
    assert canonical_deployment_type(alias) == expected


def test_unknown_type_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown deployment type 'Turbo'; expected one of GlobalStandard"):
        canonical_deployment_type("Turbo")
