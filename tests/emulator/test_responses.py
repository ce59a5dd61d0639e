"""The Responses API: objects, event sequences, incomplete answers, retrieve and resume."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from meter.apps.emulator import Emulator
from tests.emulator.conftest import API_KEY, sse_events

ORDER = [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.done", "response.content_part.done",
    "response.output_item.done",
]


def _collapse(types: list[str]) -> list[str]:
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]


def test_non_stream(emu: Emulator, azure: openai.AzureOpenAI, v1: openai.OpenAI) -> None:
    for client in (azure, v1):
        response = client.responses.create(model="gpt-4o-mini", input="Tell me about meters")
        assert response.status == "completed" and response.model == "gpt-4o-mini"
        assert response.usage is not None
        assert response.usage.output_tokens == len(response.output_text.split())
        assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert [e["api"] for e in emu.usage_log] == ["responses", "responses"]


def test_reasoning_non_stream(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model="o4-mini", input="Think about meters")
    assert response.usage is not None
    reasoning = response.usage.output_tokens_details.reasoning_tokens
    assert 0 < reasoning < response.usage.output_tokens
    assert response.usage.output_tokens - reasoning == len(response.output_text.split())
    assert [item.type for item in response.output] == ["reasoning", "message"]


def test_stream_true_event_sequence(emu: Emulator, v1: openai.OpenAI) -> None:
    events = list(v1.responses.create(model="gpt-4o-mini", input="Stream to me", stream=True))
    types = [e.type for e in events]
    assert _collapse(types) == [*ORDER, "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = types.count("response.output_text.delta")
    usage = events[-1].response.usage
    assert usage is not None and usage.output_tokens == deltas
    assert events[0].response.usage is None
    assert emu.usage_log[-1]["usage"] == usage.model_dump(exclude_none=True)


def test_stream_helper_with_reasoning(azure: openai.AzureOpenAI) -> None:
    with azure.responses.stream(model="gpt-5", input="Stream and think") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(texts)
    assert final.usage is not None
    assert final.usage.output_tokens == len(texts) + final.usage.output_tokens_details.reasoning_tokens


def test_max_output_tokens_is_incomplete(azure: openai.AzureOpenAI) -> None:
    response = azure.responses.create(model="gpt-4o-mini", input="Go on and on", max_output_tokens=4)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 4
    events = list(azure.responses.create(model="gpt-4o-mini", input="Go on and on", max_output_tokens=4, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.usage is not None and events[-1].response.usage.output_tokens == 4


def test_wire_format(emu: Emulator) -> None:
    body = {"model": "gpt-4o-mini", "input": "Raw frames please", "stream": True}
    response = httpx.post(emu.url + "/openai/responses?api-version=2025-04-01-preview", json=body,
                          headers={"api-key": API_KEY})
    frames = sse_events(response.text)
    for name, data in frames:
        event = json.loads(data)
        assert name == event["type"] and list(event)[:2] == ["type", "sequence_number"]
    final = json.loads(frames[-1][1])["response"]
    assert final["content_filters"][0]["source_type"] == "prompt"


def test_retrieve_and_resume(emu: Emulator, azure: openai.AzureOpenAI, v1: openai.OpenAI) -> None:
    events = list(azure.responses.create(model="gpt-4o-mini", input="Keep this one", stream=True))
    response_id = events[0].response.id
    fetched = azure.responses.retrieve(response_id)
    assert fetched.status == "completed" and fetched.usage == events[-1].response.usage
    resumed = list(v1.responses.retrieve(response_id, stream=True, starting_after=3))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[4:]]
    assert resumed[-1].response.usage == events[-1].response.usage
    retrievals = [e for e in emu.usage_log if e["operation"] == "retrieve"]
    assert len(retrievals) == 2 and all(e["usage"] is None for e in retrievals)  # never billed twice


def test_retrieve_unknown_and_unstreamed(azure: openai.AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        azure.responses.retrieve("resp_missing")
    plain = azure.responses.create(model="gpt-4o-mini", input="Not streamed")
    with pytest.raises(openai.BadRequestError):
        list(azure.responses.retrieve(plain.id, stream=True, starting_after=0))


def test_previous_response_id_chains_the_conversation(v1: openai.OpenAI) -> None:
    first = v1.responses.create(model="gpt-4o-mini", input="Start a conversation")
    second = v1.responses.create(model="gpt-4o-mini", input="Start a conversation", previous_response_id=first.id)
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens == 2 * first.usage.input_tokens + first.usage.output_tokens
    with pytest.raises(openai.BadRequestError) as info:
        v1.responses.create(model="gpt-4o-mini", input="Continue", previous_response_id="resp_unknown")
    assert info.value.code == "previous_response_not_found"


def _headers(emu: Emulator, stream: bool) -> httpx.Headers:
    body = {"model": "gpt-5", "input": "Headers please", "stream": stream}
    return httpx.post(emu.url + "/openai/responses?api-version=2025-04-01-preview", json=body,
                      headers={"api-key": API_KEY}).headers


def test_rate_limit_headers_as_azure_recorded_them(emu: Emulator) -> None:
    """Recorded Azure Responses traffic (conformance cases 19-24, East US, 2025-11): an answer that is not streamed
    carries the token limit and remaining tokens as chat does; a streamed one (and an error) only the request
    counts. The emulator sent -1 for both, so a dashboard never saw a Responses deployment's token headroom."""
    plain = _headers(emu, stream=False)
    assert int(plain["x-ratelimit-limit-tokens"]) > 0
    assert 0 <= int(plain["x-ratelimit-remaining-tokens"]) <= int(plain["x-ratelimit-limit-tokens"])
    assert int(plain["x-ratelimit-limit-requests"]) > 0
    streamed = _headers(emu, stream=True)
    assert int(streamed["x-ratelimit-limit-requests"]) > 0 and int(streamed["x-ratelimit-remaining-requests"]) >= 0
    assert "x-ratelimit-limit-tokens" not in streamed and "x-ratelimit-remaining-tokens" not in streamed


def test_the_minus_one_quirk_is_a_setting() -> None:
    """Azure has also been reported answering Responses with -1 for the token headers (Microsoft Q&A 5625878,
    openai-dotnet #838): ``responses_token_headers="minus-one"`` reproduces it."""
    from meter.apps.emulator.config import EmulatorConfig

    with Emulator(EmulatorConfig(responses_token_headers="minus-one")) as quirky:
        for stream in (False, True):
            headers = _headers(quirky, stream)
            assert headers["x-ratelimit-limit-tokens"] == "-1" and headers["x-ratelimit-remaining-tokens"] == "-1"
            assert headers["x-ratelimit-reset-tokens"] == "0"
