"""Records priced through the real SDK: served model, deployment map, spill-over, PTU, unknowns."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import meter
from meter.pricing import DeploymentInfo
from tests.support.cases import OWN_CASES, load_cases
from tests.support.replay import ReplayServer, case_response

CASES = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}
CHAT = CASES["01"]  # o4-mini-2025-04-16: input 2410 (1920 cached), output 618 (448 reasoning)
PATH = "/openai/deployments/reasoner-prod/chat/completions"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def call(server: ReplayServer, m: meter.Meter, headers: list[tuple[str, str]] | None = None) -> meter.CallRecord:
    response = case_response(CHAT)
    if headers:
        response.headers = [*response.headers, *headers]
    server.add("POST", PATH, response)
    records: list[meter.CallRecord] = []
    m.subscribe(records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21",
                                           max_retries=0), meter=m)
    client.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    assert m.flush(10)  # the record comes on the metering worker, a moment after the call
    assert len(records) == 1
    return records[0]


@pytest.fixture
def server() -> Any:
    with ReplayServer() as srv:
        yield srv


def test_served_model_priced_global_standard_by_default(server: ReplayServer) -> None:
    record = call(server, meter.Meter())
    cost = record.cost
    assert cost is not None and cost.basis == "list"
    # by hand: (2410-1920) x 1.1 + 1920 x 0.275 + 618 x 4.4, per 1M tokens (reasoning is inside output)
    assert cost.total == Decimal("0.000539") + Decimal("0.000528") + Decimal("0.0027192")
    assert cost.deployment_type == "GlobalStandard" and cost.assumed_deployment_type
    assert record.deployment_type == "GlobalStandard"
    assert all(isinstance(v, Decimal) for v in cost.amounts.values())


def test_deployment_map_sets_type_and_region(server: ReplayServer) -> None:
    record = call(server, meter.Meter(deployments={"reasoner-prod": ("o4-mini", "DataZoneStandard")}))
    cost = record.cost
    assert cost is not None and not cost.assumed_deployment_type
    # 490 x 1.21 + 1920 x 0.303 + 618 x 4.84, per 1M tokens
    assert cost.total == Decimal("0.0005929") + Decimal("0.00058176") + Decimal("0.00299112")
    assert record.deployment_type == "DataZoneStandard"


def test_mapped_model_used_when_served_model_is_unknown(server: ReplayServer) -> None:
    response = json.loads(CHAT.body)
    response["model"] = "my-finetune"  # a name the book does not know
    from tests.support.replay import CannedResponse

    server.add("POST", PATH, CannedResponse.json(200, response))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, deployments={"reasoner-prod": DeploymentInfo(model="o4-mini")})
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21"), meter=m)
    client.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    assert m.flush(10)
    assert records[0].cost is not None and records[0].cost.model is not None
    assert records[0].cost.model.startswith("o4-mini") and records[0].cost.basis == "list"


def test_provisioned_is_zero_with_basis_provisioned(server: ReplayServer) -> None:
    record = call(server, meter.Meter(deployments={"reasoner-prod": ("o4-mini", "GlobalProvisionedManaged")}))
    assert record.cost is not None
    assert (record.cost.basis, record.cost.total) == ("provisioned", Decimal(0))


def test_spilled_over_ptu_call_is_priced_per_token(server: ReplayServer) -> None:
    m = meter.Meter(deployments={"reasoner-prod": ("o4-mini", "GlobalProvisionedManaged")})
    record = call(server, m, headers=[("x-ms-is-spilled-over", "true")])
    assert record.azure.spilled_over is True
    assert record.cost is not None and record.cost.basis == "list"
    assert record.deployment_type == "GlobalStandard"


def test_unknown_model_is_unknown_never_zero(server: ReplayServer) -> None:
    response = json.loads(CHAT.body)
    response["model"] = "mystery-model-9"
    from tests.support.replay import CannedResponse

    server.add("POST", "/openai/deployments/mystery/chat/completions", CannedResponse.json(200, response))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21"), meter=m)
    client.chat.completions.create(model="mystery", messages=MESSAGES)
    assert m.flush(10)
    cost = records[0].cost
    assert cost is not None and cost.basis == "unknown" and cost.total is None and cost.reason
    assert m.costing is not None and m.costing.book.unpriced_calls.get("mystery-model-9", 0) >= 1


def test_estimated_usage_gives_flagged_estimate(server: ReplayServer) -> None:
    server.add("POST", "/openai/deployments/mini/chat/completions", case_response(CASES["04"]))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, deployments={"mini": "gpt-4o-mini-2024-07-18"})
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-06-01"), meter=m)
    list(client.chat.completions.create(model="mini", messages=MESSAGES, stream=True))
    assert m.flush(10)
    record = records[0]
    assert record.usage_source == "estimated"
    assert record.cost is not None and record.cost.estimated and record.cost.total is not None


def test_errors_have_no_cost(server: ReplayServer) -> None:
    server.add("POST", "/openai/deployments/gpt4o-east/chat/completions", case_response(CASES["16"]))
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version="2024-10-21",
                                           max_retries=0), meter=m)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt4o-east", messages=MESSAGES)
    assert m.flush(10)
    assert records[0].cost is None and records[0].usage is None


def test_pricing_off(server: ReplayServer) -> None:
    assert call(server, meter.Meter(price_book=False)).cost is None


def test_deployments_from_environment(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METER_DEPLOYMENTS", json.dumps(
        {"reasoner-prod": {"model": "o4-mini", "deployment_type": "DataZoneStandard"}}))
    assert call(server, meter.Meter()).deployment_type == "DataZoneStandard"


def test_negotiated_table_layered_on_top(server: ReplayServer, tmp_path: Path) -> None:
    table = tmp_path / "contoso.toml"
    table.write_text(
        '[table]\nversion = "contoso-1"\npublished = 2026-01-01\n\n'
        '[[price]]\nmodel = "o4-mini-2025-04-16"\ndeployment_type = "GlobalStandard"\n'
        'effective_from = 2026-01-01\ninput = "1"\ncached_input = "0.25"\noutput = "4"\n'
        'source = "Contoso agreement 2026"\n'
    )
    record = call(server, meter.Meter(price_tables=[table]))
    assert record.cost is not None
    # 490 x 1 + 1920 x 0.25 + 618 x 4, per 1M tokens
    assert record.cost.total == Decimal("0.00049") + Decimal("0.00048") + Decimal("0.002472")
    assert "contoso-1" in record.cost.table_version
