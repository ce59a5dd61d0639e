"""The deployment -> (model, deployment type, region) map that meter reads from a file or env var."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meter.pricing import DeploymentInfo, PricingFileError, load_deployment_map

TOML = """
[deployments.chat-prod]
model = "gpt-4.1-mini-2025-04-14"
deployment_type = "data zone"
region = "swedencentral"

[deployments]
embed = "text-embedding-3-large"
"""


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "deployments.toml"
    path.write_text(TOML, encoding="utf-8")
    assert load_deployment_map(path) == {
        "chat-prod": DeploymentInfo("gpt-4.1-mini-2025-04-14", "DataZoneStandard", "swedencentral"),
        "embed": DeploymentInfo("text-embedding-3-large", None, None),
    }
    assert load_deployment_map(str(path)) == load_deployment_map(path)


def test_json_text_and_file(tmp_path: Path) -> None:
    data = {"chat": {"model": "gpt-5-mini", "deployment_type": "GlobalBatch"}, "e": "text-embedding-3-small"}
    expected = {
        "chat": DeploymentInfo("gpt-5-mini", "GlobalBatch", None),
        "e": DeploymentInfo("text-embedding-3-small"),
    }
    assert load_deployment_map(json.dumps(data)) == expected
    assert load_deployment_map(json.dumps({"deployments": data})) == expected
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_deployment_map(path) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"chat": {"deployment_type": "GlobalStandard"}}', "(JSON text): deployment 'chat': field 'model': missing"),
        ('{"chat": {"model": "m", "deployment_type": "Turbo"}}', "field 'deployment_type': unknown deployment type"),
        ('{"chat": {"model": "m", "regoin": "x"}}', "deployment 'chat': field 'regoin': unknown field"),
        ('{"chat": {"model": "m", "region": 5}}', "field 'region': must be a non-empty string"),
        ('{"chat": 5}', "deployment 'chat': field 'model': must be a model name or a table with model"),
        ("{not json", "(JSON text): (file): field '-': not valid JSON"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(PricingFileError) as info:
        load_deployment_map(text)
    assert message in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "d.toml"
    path.write_text("[deployments\n", encoding="utf-8")
    with pytest.raises(PricingFileError, match="not valid TOML"):
        load_deployment_map(path)
    with pytest.raises(PricingFileError, match="cannot read file"):
        load_deployment_map(tmp_path / "missing.toml")
