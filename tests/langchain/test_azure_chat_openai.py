"""LangChain's AzureChatOpenAI, as the README shows it: metered http clients handed to the openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import prometheus_client
import pytest

import meter
from meter.apps.emulator import Emulator

langchain_openai: Any = pytest.importorskip(
    "langchain_openai", reason="langchain-openai is not installed: pip install meter[langchain] (optional test extra)")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def make(emu: Emulator, records: list[meter.CallRecord], **kwargs: Any) -> tuple[Any, meter.Meter]:
    """The chat model, and its Meter (``flush()`` it before reading ``records``: they come on its worker)."""
    m = meter.Meter(on_record=records.append, registry=prometheus_client.CollectorRegistry(), otel=False)
    return langchain_openai.AzureChatOpenAI(
        azure_endpoint=emu.url, azure_deployment="gpt-4o-mini", api_version="2024-10-21",
        api_key=emu.config.api_key, max_retries=0,
        http_client=meter.wrap(httpx2.Client(), meter=m),
        http_async_client=meter.wrap(httpx2.AsyncClient(), meter=m), **kwargs), m


def billed(emu: Emulator) -> dict[str, Any]:
    entry: dict[str, Any] = emu.usage_log[-1]
    return entry


def test_invoke(emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    chat, m = make(emu, records)
    reply = chat.invoke("Summarise the quarterly report.")
    assert reply.content
    assert m.flush(10)
    (record,) = records
    usage = billed(emu)["usage"]
    assert record.deployment == "gpt-4o-mini" and record.usage is not None
    assert (record.usage.input_tokens, record.usage.output_tokens) == (usage["prompt_tokens"],
                                                                       usage["completion_tokens"])
    assert record.cost is not None and record.cost.total is not None and record.cost.total > 0


def test_stream_gets_exact_usage(emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    chat, m = make(emu, records)
    text = "".join(str(chunk.content) for chunk in chat.stream("Tell me a story."))
    assert text
    assert m.flush(10)
    (record,) = records
    assert record.stream and record.usage_source == "stream" and record.usage is not None
    assert record.usage.output_tokens == billed(emu)["usage"]["completion_tokens"]


async def test_ainvoke(emu: Emulator) -> None:
    records: list[meter.CallRecord] = []
    chat, m = make(emu, records)
    reply = await chat.ainvoke("Summarise the quarterly report.")
    assert m.flush(10)
    assert reply.content and len(records) == 1 and records[0].usage is not None
