"""Chat completions through the real SDK and on the raw wire: shapes, streams, limits."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from meter.apps.emulator import Emulator
from tests.emulator.conftest import API_KEY, sse_events

MESSAGES = [{"role": "user", "content": "Say something about metering"}]


def test_non_stream_classic_and_v1(emu: Emulator, azure: openai.AzureOpenAI, v1: openai.OpenAI) -> None:
    classic = azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    modern = v1.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    for answer in (classic, modern):
        assert answer.model == "gpt-4o-mini-2024-07-18"
        assert answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None
        words = answer.choices[0].message.content.split()
        assert answer.usage.completion_tokens == len(words)
        assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert classic.choices[0].message.content == modern.choices[0].message.content  # deterministic
    assert [(e["deployment"], e["api"], e["status"]) for e in emu.usage_log] == [("gpt-4o-mini", "chat", 200)] * 2
    assert emu.usage_log[0]["usage"] == classic.usage.model_dump(exclude_none=True)


def test_stream_without_include_usage_has_no_usage(emu: Emulator, azure: openai.AzureOpenAI) -> None:
    chunks = list(azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    first = chunks[0]
    assert first.choices == [] and first.id == "" and first.model == ""
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert chunks[-1].choices[0].finish_reason == "stop"
    billed = emu.usage_log[0]["usage"]
    assert billed["completion_tokens"] == len(deltas)  # billed even though not reported


@pytest.mark.parametrize("deployment", ["gpt-4o-mini", "o4-mini", "gpt-5"])
def test_stream_with_include_usage(emu: Emulator, v1: openai.OpenAI, deployment: str) -> None:
    chunks = list(v1.chat.completions.create(model=deployment, messages=MESSAGES, stream=True,
                                             stream_options={"include_usage": True}))
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1].choices == []
    usage = with_usage[0].usage
    assert usage is not None and usage.completion_tokens_details is not None
    deltas = [c for c in chunks if c.choices and c.choices[0].delta.content]
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert usage.completion_tokens == len(deltas) + reasoning
    assert (reasoning > 0) == (deployment != "gpt-4o-mini")
    assert reasoning <= usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert emu.usage_log[-1]["usage"] == usage.model_dump(exclude_none=True)


def test_stream_wire_format(emu: Emulator) -> None:
    url = emu.url + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.Client() as client:
        response = client.post(url, json=body, headers={"api-key": API_KEY, "x-ms-client-request-id": "abc"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["x-ms-client-request-id"] == "abc"
    assert response.headers["x-ms-deployment-name"] == "gpt-4o-mini"
    frames = [data for _, data in sse_events(response.text)]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    annotation, role, *content, finish, usage = chunks
    assert annotation["prompt_filter_results"][0]["prompt_index"] == 0 and "usage" not in annotation
    assert list(annotation) == ["choices", "created", "id", "model", "object", "prompt_filter_results"]
    assert role["choices"][0]["delta"]["role"] == "assistant" and role["choices"][0]["content_filter_results"] == {}
    assert all(c["choices"][0]["content_filter_results"]["hate"]["filtered"] is False for c in content)
    assert all(list(c) == sorted(c) for c in chunks)  # Azure sorts keys
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in [role, *content, finish])
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(content)


def test_max_tokens_gives_length(emu: Emulator, azure: openai.AzureOpenAI) -> None:
    answer = azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 5
    chunks = list(azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_reasoning_deployment_wants_max_completion_tokens(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        azure.chat.completions.create(model="o4-mini", messages=MESSAGES, max_tokens=5)
    assert info.value.code == "unsupported_parameter"
    answer = azure.chat.completions.create(model="o4-mini", messages=MESSAGES, max_completion_tokens=30)
    assert answer.usage is not None and answer.usage.completion_tokens <= 30


def test_old_api_version_rejects_stream_options(emu: Emulator) -> None:
    old = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version="2024-06-01", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        old.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                    stream_options={"include_usage": True})
    assert "Unrecognized request argument supplied: stream_options" in str(info.value)
    assert len(list(old.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))) > 3


def test_double_slash_path(emu: Emulator) -> None:
    url = emu.url + "//openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    response = httpx.post(url, json={"messages": MESSAGES}, headers={"api-key": API_KEY})
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
