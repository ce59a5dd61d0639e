"""The real ``openai`` SDK through ``meter.wrap``, against a real loopback server.

Both the SDK's default httpx2 client and a legacy ``httpx`` client passed as
``http_client``; sync and async; chat and responses; streaming and not;
``with_raw_response`` and the ``responses.stream`` helper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import httpx
import openai
import pytest

import meter
from tests.support.cases import OWN_CASES, Case, load_cases
from tests.support.replay import CannedResponse, ReplayServer, case_response
from tests.transport.conftest import Records

CASES = {c.name.split("-", 1)[0]: c for c in load_cases(OWN_CASES)}
CHAT = CASES["01"]  # non-stream chat, cached + reasoning
CHAT_STREAM = CASES["03"]  # include_usage stream with Azure filter chunks
RESP = CASES["12"]  # classic /openai/responses, non-stream
RESP_STREAM = CASES["13"]  # v1 responses stream (also served on the classic path here)
API_VERSION = "2025-04-01-preview"
KEY = "sk-test-0123456789-distinctive-key"


def serve(srv: ReplayServer, case: Case, path: str) -> None:
    srv.add(case.method, path, case_response(case))


def usage_of(case: Case) -> dict[str, int]:
    return cast(dict[str, int], case.expected["usage"])


def assert_usage(record: meter.CallRecord, case: Case) -> None:
    expected = usage_of(case)
    assert record.usage is not None
    got = {k: getattr(record.usage, k) for k in expected}
    assert got == expected
    assert record.response_model == case.expected["response_model"]
    assert record.response_id == case.expected["response_id"]


def sync_client(srv: ReplayServer, m: meter.Meter, legacy: bool) -> openai.AzureOpenAI:
    kwargs: dict[str, Any] = {}
    if legacy:
        kwargs["http_client"] = cast(Any, httpx.Client())
    client = openai.AzureOpenAI(azure_endpoint=srv.url, api_key=KEY, api_version=API_VERSION,
                                max_retries=0, **kwargs)
    return meter.wrap(client, meter=m)


def async_client(srv: ReplayServer, m: meter.Meter, legacy: bool) -> openai.AsyncAzureOpenAI:
    kwargs: dict[str, Any] = {}
    if legacy:
        kwargs["http_client"] = cast(Any, httpx.AsyncClient())
    client = openai.AsyncAzureOpenAI(azure_endpoint=srv.url, api_key=KEY, api_version=API_VERSION,
                                     max_retries=0, **kwargs)
    return meter.wrap(client, meter=m)


LEGACY = pytest.mark.parametrize("legacy", [False, True], ids=["httpx2-default", "legacy-httpx"])
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@LEGACY
def test_chat_sync(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    client = sync_client(server, metered, legacy)
    completion = client.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    assert completion.usage is not None
    metered.flush()
    record = records.one()
    assert_usage(record, CHAT)
    assert (record.api, record.operation, record.stream, record.outcome) == ("chat", "create", False, "ok")
    assert record.deployment == "reasoner-prod" and record.api_version == API_VERSION
    assert record.usage_source == "response"
    assert record.server_address == "127.0.0.1" and record.status_code == 200


@LEGACY
def test_chat_stream_sync(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, CHAT_STREAM, "/openai/deployments/gpt4o-east/chat/completions")
    client = sync_client(server, metered, legacy)
    stream = client.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert chunks[-1].usage is not None  # the SDK handles the usage chunk (empty choices) fine
    metered.flush()
    record = records.one()
    assert_usage(record, CHAT_STREAM)
    assert record.stream and record.usage_source == "stream" and record.outcome == "ok"
    assert record.time_to_first_token_s is not None and 0 < record.time_to_first_token_s <= record.duration_s
    assert record.finish_reasons == ("stop",)


def test_include_usage_is_injected_and_the_sdk_copes(
    server: ReplayServer, metered: meter.Meter, records: Records
) -> None:
    serve(server, CHAT_STREAM, "/openai/deployments/gpt4o-east/chat/completions")
    client = sync_client(server, metered, legacy=False)
    text = "".join(
        ((c.choices[0].delta.content if c.choices and c.choices[0].delta else "") or "")
        for c in client.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True)
    )
    assert text
    sent = server.requests[-1].json()
    assert isinstance(sent, dict)
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == MESSAGES
    metered.flush()
    assert records.one().usage_source == "stream"


def test_injection_can_be_turned_off(server: ReplayServer, records: Records) -> None:
    serve(server, CASES["04"], "/openai/deployments/mini/chat/completions")
    m = meter.Meter(on_record=records.append, inject_stream_usage=False)
    client = sync_client(server, m, legacy=False)
    list(client.chat.completions.create(model="mini", messages=MESSAGES, stream=True))
    sent = server.requests[-1].json()
    assert isinstance(sent, dict) and "stream_options" not in sent
    m.flush()
    record = records.one()
    assert record.usage_source == "estimated" and record.usage is not None
    assert record.usage.output_tokens > 0 and record.usage.input_tokens > 0


@LEGACY
def test_responses_sync(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, RESP, "/openai/responses")
    client = sync_client(server, metered, legacy)
    response = client.responses.create(model="gpt-4.1-nano", input="hi")
    assert response.usage is not None
    metered.flush()
    record = records.one()
    assert_usage(record, RESP)
    assert (record.api, record.deployment, record.finish_reasons) == ("responses", "gpt-4.1-nano", ("completed",))


@LEGACY
def test_responses_stream_helper_sync(
    server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool
) -> None:
    serve(server, RESP_STREAM, "/openai/responses")
    client = sync_client(server, metered, legacy)
    with client.responses.stream(model="gpt-5-mini", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.usage is not None
    metered.flush()
    record = records.one()
    assert_usage(record, RESP_STREAM)
    assert record.stream and record.usage_source == "stream" and record.time_to_first_token_s is not None


@LEGACY
def test_with_raw_response_sync(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    client = sync_client(server, metered, legacy)
    raw = client.chat.completions.with_raw_response.create(model="reasoner-prod", messages=MESSAGES)
    metered.flush()
    assert raw.headers.get("apim-request-id") == records.one().azure.apim_request_id
    assert raw.parse().usage is not None
    assert_usage(records.one(), CHAT)


@LEGACY
async def test_chat_async(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    client = async_client(server, metered, legacy)
    await client.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    metered.flush()
    assert_usage(records.one(), CHAT)
    await client.close()


@LEGACY
async def test_chat_stream_async(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, CHAT_STREAM, "/openai/deployments/gpt4o-east/chat/completions")
    client = async_client(server, metered, legacy)
    stream = await client.chat.completions.create(model="gpt4o-east", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    metered.flush()
    record = records.one()
    assert_usage(record, CHAT_STREAM)
    assert record.stream and record.time_to_first_token_s is not None
    await client.close()


@LEGACY
async def test_responses_async(server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool) -> None:
    serve(server, RESP, "/openai/responses")
    client = async_client(server, metered, legacy)
    await client.responses.create(model="gpt-4.1-nano", input="hi")
    metered.flush()
    assert_usage(records.one(), RESP)
    await client.close()


@LEGACY
async def test_responses_stream_async(
    server: ReplayServer, metered: meter.Meter, records: Records, legacy: bool
) -> None:
    serve(server, RESP_STREAM, "/openai/responses")
    client = async_client(server, metered, legacy)
    async with client.responses.stream(model="gpt-5-mini", input="hi") as stream:
        async for _ in stream:
            pass
    metered.flush()
    assert_usage(records.one(), RESP_STREAM)
    await client.close()


async def test_with_raw_response_async(server: ReplayServer, metered: meter.Meter, records: Records) -> None:
    serve(server, RESP, "/openai/responses")
    client = async_client(server, metered, legacy=False)
    raw = await client.responses.with_raw_response.create(model="gpt-4.1-nano", input="hi")
    assert raw.http_response.status_code == 200 and raw.parse().usage is not None
    metered.flush()
    assert_usage(records.one(), RESP)
    await client.close()


def test_sdk_retries_429_one_record_per_attempt(server: ReplayServer, records: Records) -> None:
    throttled = case_response(CASES["16"])
    throttled.headers = [(k, v) for k, v in throttled.headers if k.lower() not in ("retry-after-ms", "retry-after")]
    throttled.headers.append(("retry-after-ms", "10"))
    server.add("POST", "/openai/deployments/reasoner-prod/chat/completions", throttled, times=2)
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    m = meter.Meter(on_record=records.append)
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key=KEY, api_version=API_VERSION,
                                           max_retries=3), meter=m)
    client.chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    m.flush()
    assert [r.attempt for r in records] == [0, 1, 2]
    assert [r.outcome for r in records] == ["http_error", "http_error", "ok"]
    assert [r.error_type for r in records] == ["429", "429", None]
    assert records[0].azure.retry_after_s == pytest.approx(0.01)
    assert len({r.correlation_id for r in records}) == 1
    assert records[0].usage is None and records[2].usage is not None


def test_errors_pass_through_unchanged(server: ReplayServer, metered: meter.Meter, records: Records) -> None:
    body = {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}
    server.add("POST", "/openai/deployments/nope/chat/completions", CannedResponse.json(404, body))
    client = sync_client(server, metered, legacy=False)
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert info.value.status_code == 404
    metered.flush()
    record = records.one()
    assert (record.outcome, record.error_type, record.usage) == ("http_error", "DeploymentNotFound", None)


def test_wrap_twice_meters_once(server: ReplayServer, metered: meter.Meter, records: Records) -> None:
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    client = meter.wrap(sync_client(server, metered, legacy=False), meter=metered)
    client.with_options(timeout=5).chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    metered.flush()
    assert len(records) == 1


def test_api_key_never_reaches_a_record(server: ReplayServer, metered: meter.Meter, records: Records) -> None:
    serve(server, CHAT, "/openai/deployments/reasoner-prod/chat/completions")
    sync_client(server, metered, legacy=False).chat.completions.create(model="reasoner-prod", messages=MESSAGES)
    metered.flush()
    assert KEY not in repr(records.one())
    assert "hi" not in repr(records.one().attributes)


WRAPPERS: list[Callable[[], Any]] = [
    lambda: openai.OpenAI(api_key=KEY), lambda: openai.AsyncOpenAI(api_key=KEY),
]


@pytest.mark.parametrize("make", WRAPPERS)
def test_wrap_openai_clients(make: Callable[[], Any]) -> None:
    client = make()
    assert meter.wrap(client) is client
    transport = client._client._transport
    assert isinstance(transport, meter.MeteredTransport | meter.AsyncMeteredTransport)
