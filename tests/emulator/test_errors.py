"""Azure's failures: bad key, unknown deployment, content filter, throttling and injected faults."""

from __future__ import annotations

import httpx
import openai
import pytest

from meter.apps.emulator import Emulator
from tests.emulator.conftest import API_KEY, API_VERSION

MESSAGES = [{"role": "user", "content": "Hello"}]
CHAT = "/openai/deployments/gpt-4o-mini/chat/completions"


def test_bad_key_is_401_with_azure_body(emu: Emulator) -> None:
    client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key="wrong", api_version=API_VERSION, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.code == "401"
    assert info.value.response.json() == {"error": {"code": "401", "message": (
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
        "an active subscription and use a correct regional API endpoint for your resource.")}}
    assert set(info.value.response.headers) >= {"apim-request-id"}
    assert "x-ms-region" not in info.value.response.headers


def test_bearer_token_is_accepted(emu: Emulator) -> None:
    response = httpx.post(emu.url + "/openai/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES},
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200


def test_unknown_deployment(emu: Emulator, azure: openai.AzureOpenAI, v1: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        azure.chat.completions.create(model="gpt-missing", messages=MESSAGES)
    assert info.value.code == "DeploymentNotFound"
    assert info.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as v1_info:  # recorded: v1 answers 400 unknown_model
        v1.chat.completions.create(model="gpt-missing", messages=MESSAGES)
    assert v1_info.value.code == "unknown_model"
    assert emu.usage_log[0]["deployment"] == "gpt-missing" and emu.usage_log[0]["status"] == 404


def test_missing_api_version_is_resource_not_found(emu: Emulator) -> None:
    response = httpx.post(emu.url + CHAT, json={"messages": MESSAGES}, headers={"api-key": API_KEY})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert httpx.get(emu.url + "/nowhere").status_code == 404


def test_wrong_operation_for_model(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        azure.chat.completions.create(model="text-embedding-3-small", messages=MESSAGES)
    assert info.value.code == "OperationNotSupported"


def test_content_filter(emu: Emulator, azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        azure.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "forbidden-topic"}],
                                      stream=True)
    assert info.value.code == "content_filter"
    body = info.value.body
    assert isinstance(body, dict) and body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    with pytest.raises(openai.BadRequestError) as responses_info:
        azure.responses.create(model="gpt-4o-mini", input="about the forbidden-topic")
    assert responses_info.value.code == "content_filter" and responses_info.value.param == "prompt"
    billed = [e["usage"] for e in emu.usage_log]
    assert all(u is not None and u["total_tokens"] > 0 for u in billed)  # the prompt is billed


def test_429_then_sdk_retry_succeeds(emu: Emulator) -> None:
    client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION, max_retries=2)
    emu.fail_next(429, count=2, deployment="gpt-4o-mini")
    answer = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.http_request.headers["x-stainless-retry-count"] == "2"
    assert [e["status"] for e in emu.usage_log] == [429, 429, 200]
    assert emu.usage_log[0]["usage"] is None


def test_429_body_and_headers(emu: Emulator, azure: openai.AzureOpenAI) -> None:
    emu.fail_next(429)
    with pytest.raises(openai.RateLimitError) as info:
        azure.responses.create(model="gpt-4o-mini", input="hi")
    headers = info.value.response.headers
    assert headers["retry-after-ms"] == "50" and headers["retry-after"] == "1"
    assert info.value.code == "429" and "Responses_Create" in info.value.message
    emu.fail_next(429)
    with pytest.raises(openai.RateLimitError) as chat_info:
        azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "ChatCompletions_Create" in chat_info.value.message and API_VERSION in chat_info.value.message


def test_fault_targets_one_deployment_and_5xx(emu: Emulator, azure: openai.AzureOpenAI) -> None:
    emu.fail_next(500, deployment="o4-mini")
    azure.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # not affected
    with pytest.raises(openai.InternalServerError):
        azure.chat.completions.create(model="o4-mini", messages=MESSAGES)
    assert [e["status"] for e in emu.usage_log] == [200, 500]


def test_rate_limit_headers_count_down(emu: Emulator) -> None:
    url = emu.url + "/openai/deployments/o4-mini/chat/completions?api-version=" + API_VERSION
    first, second = (httpx.post(url, json={"messages": MESSAGES}, headers={"api-key": API_KEY}) for _ in range(2))
    for response in (first, second):
        assert response.headers["x-ms-region"] == "East US 2"
        assert response.headers["x-ratelimit-limit-requests"] == "120"
        assert response.headers["x-ratelimit-limit-tokens"] == "120000"
        assert response.headers["apim-request-id"] and response.headers["x-request-id"]
    assert int(second.headers["x-ratelimit-remaining-requests"]) == int(
        first.headers["x-ratelimit-remaining-requests"]) - 1
    assert int(second.headers["x-ratelimit-remaining-tokens"]) < int(first.headers["x-ratelimit-remaining-tokens"])
