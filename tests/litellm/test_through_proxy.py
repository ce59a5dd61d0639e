"""The documented LiteLLM Azure Responses calls through `meter proxy` (no in-process hook),
and the same calls made with the openai SDK as the proxy's client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import prometheus_client
import pytest

import meter
from meter.apps.emulator import Emulator
from meter.apps.proxy import ProxyServer
from meter.pricing import PriceBook
from tests.litellm.conftest import API_KEY, DEPLOYMENT_TYPE, DEPLOYMENTS
from tests.support.waiting import wait_until


@pytest.fixture
def proxied(emu: Emulator) -> Iterator[tuple[ProxyServer, list[meter.CallRecord]]]:
    emu.usage_log.clear()
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, registry=prometheus_client.CollectorRegistry(), otel=False,
                    deployments={name: (model, DEPLOYMENT_TYPE) for name, (_, model) in DEPLOYMENTS.items()})
    with ProxyServer(emu.url, meter=m) as proxy:
        yield proxy, records


def check(records: list[meter.CallRecord], emu: Emulator, book: PriceBook, deployment: str) -> None:
    billed = [e for e in emu.usage_log if e["deployment"] == deployment and e["usage"]]
    # A client that stops at a stream's end marker returns before the proxy has read the upstream's
    # last bytes, so the proxy's record may still be on its way: wait for it (a bounded wait).
    wait_until(lambda: len([r for r in records if r.deployment == deployment]) >= len(billed))
    mine = [r for r in records if r.deployment == deployment]
    assert len(mine) == len(billed) >= 1
    for record, entry in zip(mine, billed, strict=True):
        usage = entry["usage"]
        assert record.api == "responses" and record.usage is not None
        assert record.usage.input_tokens == usage["input_tokens"]
        assert record.usage.output_tokens == usage["output_tokens"]
        assert record.usage.reasoning_output_tokens == usage["output_tokens_details"]["reasoning_tokens"]
        assert record.cost is not None and record.cost.basis == "list" and record.cost.total is not None
        expected = book.cost_of(record.usage, model=DEPLOYMENTS[deployment][1], deployment_type=DEPLOYMENT_TYPE,
                                at=record.started_at)
        assert record.cost.total == expected.total and expected.total is not None and expected.total > 0


def test_litellm_responses_through_the_proxy(proxied: tuple[ProxyServer, list[meter.CallRecord]], emu: Emulator,
                                             book: PriceBook) -> None:
    litellm: Any = pytest.importorskip("litellm")
    proxy, records = proxied
    out = litellm.responses(model="azure/o1-pro", input="Tell me a three sentence bedtime story about a unicorn.",
                            max_output_tokens=100, api_key=API_KEY, api_base=proxy.url,
                            api_version="2023-03-15-preview")
    assert out.usage is not None
    for _ in litellm.responses(model="azure/codex-mini", input="Write a haiku.", api_key=API_KEY,
                               api_base=proxy.url, api_version="preview", stream=True):
        pass
    reply = litellm.completion(model="azure/responses/my-custom-o1-pro", messages=[{"role": "user", "content": "hi"}],
                               api_key=API_KEY, api_base=proxy.url, api_version="2023-03-15-preview")
    assert reply.choices[0].message.content
    for deployment in DEPLOYMENTS:
        check(records, emu, book, deployment)
    codex = [r for r in records if r.deployment == "codex-mini"]
    assert codex[0].api_version == "preview" and codex[0].stream


def test_openai_sdk_responses_through_the_proxy(proxied: tuple[ProxyServer, list[meter.CallRecord]], emu: Emulator,
                                                book: PriceBook) -> None:
    proxy, records = proxied
    classic = openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=API_KEY, api_version="2023-03-15-preview")
    classic.responses.create(model="o1-pro", input="Tell me a story.", max_output_tokens=100)
    v1 = openai.OpenAI(base_url=proxy.url + "/openai/v1/", api_key=API_KEY, default_query={"api-version": "preview"})
    for _ in v1.responses.create(model="codex-mini", input="Write a haiku.", stream=True):
        pass
    classic.responses.create(model="my-custom-o1-pro", input=[{"role": "user", "content": "hi"}])
    for deployment in DEPLOYMENTS:
        check(records, emu, book, deployment)
