"""What Azure bills beyond plain tokens, served by the emulator and metered through the real SDK on loopback.

Service tiers (body and ``x-ms-service-tier``), Responses built-in tools (output items and stream events),
audio transcriptions / translations / speech, images, compaction and Batch (upload, create, poll, output
file). Every call goes through ``meter.wrap`` and gives one record per HTTP attempt, whose usage, tool counts
and tier are the emulator's own bill.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.apps.emulator import DEFAULT_DEPLOYMENTS, Deployment, Emulator, EmulatorConfig
from tests.emulator.conftest import API_KEY, sse_events

AZURE_VERSION = "2025-04-01-preview"
AUDIO = b"RIFF" + bytes(range(256)) * 134  # 34 KB: two seconds at the emulator's 16 kB a second


class Metered:
    """An Azure and a v1 client wrapped by one meter, and the records it emitted."""

    def __init__(self, emu: Emulator) -> None:
        self._records: list[meter.CallRecord] = []
        self.meter = meter.Meter(on_record=self._records.append, registry=CollectorRegistry(), otel=False)
        self.azure = meter.wrap(openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=AZURE_VERSION,
                                                   max_retries=0), meter=self.meter)
        self.v1 = meter.wrap(openai.OpenAI(base_url=emu.url + "/openai/v1/", api_key=API_KEY, max_retries=0),
                             meter=self.meter)
        self.aio = openai.AsyncOpenAI(base_url=emu.url + "/openai/v1/", api_key=API_KEY, max_retries=0)

    @property
    def records(self) -> list[meter.CallRecord]:
        """The records so far: the meter is flushed first (they are made on its metering thread)."""
        self.meter.flush()
        return self._records

    def one(self) -> meter.CallRecord:
        records = self.records
        assert len(records) == 1, records
        return records.pop()

    def close(self) -> None:
        self.azure.close()
        self.v1.close()
        self.meter.close()


@pytest.fixture
def m(emu: Emulator) -> Iterator[Metered]:
    metered = Metered(emu)
    yield metered
    metered.close()


def _tools(usage: meter.Usage | None) -> dict[str, int]:
    assert usage is not None
    names = ("web_search_calls", "file_search_calls", "code_interpreter_sessions", "image_generation_calls")
    return {name: getattr(usage, name) for name in names if getattr(usage, name)}


def _billed_tokens(entry: dict[str, Any]) -> tuple[int, int]:
    usage = entry["usage"]
    return (usage.get("input_tokens", usage.get("prompt_tokens")), usage.get("output_tokens",
                                                                             usage.get("completion_tokens")))


# -- service tiers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("deployment", "asked", "served"), [
    ("gpt-5", "priority", "priority"), ("gpt-5", "auto", "priority"), ("gpt-4o-mini", "auto", "default"),
    ("gpt-4o-mini", "priority", "default"), ("gpt-5.4-mini", "flex", "flex"), ("gpt-5", "flex", "default"),
    ("gpt-5", "default", "default")])
def test_chat_echoes_the_tier_that_served_it(emu: Emulator, m: Metered, deployment: str, asked: str,
                                             served: str) -> None:
    raw = m.azure.chat.completions.with_raw_response.create(
        model=deployment, messages=[{"role": "user", "content": "tiers"}], service_tier=asked)
    assert raw.headers["x-ms-service-tier"] == served
    assert raw.parse().service_tier == served
    record = m.one()
    assert (record.requested_service_tier, record.service_tier, record.service_tier_assumed) == (asked, served, False)
    assert emu.usage_log[-1]["service_tier"] == served


def test_a_chat_stream_carries_the_tier_on_its_chunks(m: Metered) -> None:
    chunks = list(m.v1.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "s"}],
                                               stream=True, service_tier="priority"))
    assert {c.service_tier for c in chunks[1:]} == {"priority"}
    record = m.one()
    assert record.service_tier == "priority" and record.usage is not None and record.usage.output_tokens > 0


def test_responses_say_the_tier_asked_until_done_then_the_one_served(m: Metered) -> None:
    events = list(m.v1.responses.create(model="gpt-5", input="tiers", service_tier="auto", stream=True))
    assert events[0].response.service_tier == "auto" and events[-1].response.service_tier == "priority"
    response = m.v1.responses.create(model="gpt-5.4-mini", input="cheap", service_tier="flex")
    assert response.service_tier == "flex"
    assert [(r.requested_service_tier, r.service_tier) for r in m.records] == [("auto", "priority"),
                                                                              ("flex", "flex")]


def test_priority_falls_back_to_default_when_capacity_is_short() -> None:
    small = Deployment("tight", "gpt-5-2025-08-07", reasoning=True, tpm_limit=400, tiers=("priority",))
    with Emulator(EmulatorConfig(deployments=(*DEFAULT_DEPLOYMENTS, small))) as emu:
        metered = Metered(emu)
        served = [metered.v1.chat.completions.create(model="tight", messages=[{"role": "user", "content": "go"}],
                                                     service_tier="priority").service_tier for _ in range(4)]
        metered.close()
    assert served[0] == "priority" and served[-1] == "default"
    assert [r.service_tier for r in metered.records] == served


def test_an_unknown_tier_is_refused(m: Metered) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        m.v1.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}],
                                     service_tier="turbo")
    assert caught.value.param == "service_tier"
    assert m.one().status_code == 400


# -- Responses built-in tools ----------------------------------------------------------------------------

TOOLS: list[Any] = [{"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
                    {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"}]


def test_tool_items_come_before_the_message_and_are_counted(emu: Emulator, m: Metered) -> None:
    response = m.v1.responses.create(model="gpt-5", input="Search, read, compute and draw", tools=TOOLS)
    types = [item.type for item in response.output]
    assert types == ["reasoning", "web_search_call", "file_search_call", "code_interpreter_call",
                     "image_generation_call", "message"]
    code = response.output[3]
    image = response.output[4]
    assert code.type == "code_interpreter_call" and code.container_id.startswith("cntr_")
    assert image.type == "image_generation_call" and image.result and image.result.startswith("iVBOR")
    record = m.one()
    assert _tools(record.usage) == {"web_search_calls": 1, "file_search_calls": 1, "code_interpreter_sessions": 1,
                                    "image_generation_calls": 1}
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == _billed_tokens(
        emu.usage_log[-1])


def test_a_tool_stream_announces_progresses_and_finishes_each_item(m: Metered) -> None:
    with m.v1.responses.stream(model="gpt-4o-mini", input="Search and draw", tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    for name in ("web_search_call", "file_search_call", "image_generation_call"):
        steps = [t for t in types if t.startswith(f"response.{name}.")]
        assert steps == [f"response.{name}.{s}" for s in ("in_progress", "searching" if "search" in name
                                                          else "generating", "completed")]
    assert "response.code_interpreter_call_code.done" in types
    done = [e.item.type for e in events if e.type == "response.output_item.done"]
    assert done == ["web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call",
                    "message"]
    indexes = [e.output_index for e in events if e.type == "response.output_item.added"]
    assert indexes == list(range(5))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [item.type for item in final.output][-1] == "message"
    assert _tools(m.one().usage) == {"web_search_calls": 1, "file_search_calls": 1, "code_interpreter_sessions": 1,
                                     "image_generation_calls": 1}


def test_a_conversation_keeps_its_container_and_is_one_session(m: Metered) -> None:
    tools: Any = [{"type": "code_interpreter", "container": {"type": "auto"}}]
    first = m.v1.responses.create(model="gpt-5", input="Load the data", tools=tools)
    second = m.v1.responses.create(model="gpt-5", input="Plot it", tools=tools, previous_response_id=first.id)
    other = m.v1.responses.create(model="gpt-5", input="Another conversation", tools=tools)
    named = m.v1.responses.create(model="gpt-5", input="In mine", tools=[{"type": "code_interpreter",
                                                                          "container": "cntr_mine"}])

    def container(response: Any) -> str:
        return str(next(i.container_id for i in response.output if i.type == "code_interpreter_call"))

    assert container(first) == container(second) != container(other)
    assert container(named) == "cntr_mine"
    assert [r.usage.code_interpreter_sessions for r in m.records if r.usage] == [1, 0, 1, 1]


def test_tools_are_called_unless_tool_choice_is_none(m: Metered) -> None:
    called = m.v1.responses.create(model="gpt-4o-mini", input="Just answer", tools=TOOLS[:1], tool_choice="auto")
    assert [item.type for item in called.output] == ["web_search_call", "message"]
    response = m.v1.responses.create(model="gpt-4o-mini", input="Just answer", tools=TOOLS, tool_choice="none")
    assert [item.type for item in response.output] == ["message"]
    assert [_tools(r.usage) for r in m.records] == [{"web_search_calls": 1}, {}]


def test_the_raw_tool_stream_is_shaped_like_the_recording(emu: Emulator) -> None:
    """Azure's web search stream (cases-billing 21): the item added in progress with a bare search action,
    the tool's own events, then the item done with its query."""
    import httpx2

    reply = httpx2.post(emu.url + "/openai/v1/responses", headers={"api-key": API_KEY}, json={
        "model": "gpt-4o-mini", "input": "top news", "stream": True, "tools": [{"type": "web_search_preview"}]})
    frames = [(name, json.loads(data)) for name, data in sse_events(reply.text)]
    added = next(d for n, d in frames if n == "response.output_item.added")
    assert added["item"]["type"] == "web_search_call" and added["item"]["status"] == "in_progress"
    assert added["item"]["action"] == {"type": "search"}
    done = next(d for n, d in frames if n == "response.output_item.done")
    assert done["item"]["action"]["query"] == "top news" and done["item"]["id"].startswith("ws_")
    assert reply.headers["x-ms-service-tier"] == "default"


# -- audio ---------------------------------------------------------------------------------------------------


def test_a_token_transcription_on_the_deployment_path(emu: Emulator, m: Metered) -> None:
    text = m.azure.audio.transcriptions.create(model="gpt-4o-transcribe", file=("hello.wav", AUDIO))
    assert text.usage is not None and text.usage.type == "tokens"
    record = m.one()
    assert (record.api, record.deployment, record.status_code) == ("transcriptions", "gpt-4o-transcribe", 200)
    assert record.usage is not None
    assert (record.usage.input_tokens, record.usage.audio_input_tokens, record.usage.output_tokens) == (
        17, 17, len(text.text.split()))
    assert emu.usage_log[-1]["usage"]["input_token_details"] == {"text_tokens": 0, "audio_tokens": 17}


def test_whisper_bills_seconds_derived_from_the_upload(emu: Emulator, m: Metered) -> None:
    text = m.azure.audio.transcriptions.create(model="whisper", file=("hello.wav", AUDIO))
    assert text.usage is not None and text.usage.type == "duration" and text.usage.seconds == 2
    twice = m.azure.audio.translations.create(model="whisper", file=("hello.wav", AUDIO * 3),
                                              response_format="verbose_json")
    assert twice.duration == pytest.approx(len(AUDIO) * 3 / 16000, abs=0.01)
    assert [e["usage"] for e in emu.usage_log] == [{"type": "duration", "seconds": 2},
                                                  {"type": "duration", "seconds": 6}]
    assert [(r.api, r.deployment, r.usage) for r in m.records] == [("transcriptions", "whisper", None),
                                                                  ("translations", "whisper", None)]


def test_a_streamed_transcription_ends_with_its_usage(m: Metered) -> None:
    events = list(m.azure.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", AUDIO), stream=True))
    assert events[-1].type == "transcript.text.done" and events[-1].usage is not None
    record = m.one()
    assert record.stream and record.usage is not None and record.usage.audio_input_tokens == 17


def test_speech_answers_audio_and_streams_its_usage(emu: Emulator, m: Metered) -> None:
    audio = m.v1.audio.speech.create(model="gpt-4o-mini-tts", input="Hello, world! This is a test.", voice="alloy")
    assert audio.content.startswith(b"ID3") and len(audio.content) > 1000
    with m.azure.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", input="Hello, world! This is a streaming test.", voice="alloy",
            stream_format="sse") as streamed:
        frames = [json.loads(d) for _, d in sse_events(streamed.read().decode()) if d != "[DONE]"]
    assert frames[-1] == {"type": "speech.audio.done",
                          "usage": {"input_tokens": 10, "output_tokens": 97, "total_tokens": 107}}
    binary, stream = m.records
    assert (binary.api, binary.deployment, binary.usage) == ("speech", "gpt-4o-mini-tts", None)
    assert stream.usage is not None and (stream.usage.input_tokens, stream.usage.output_tokens) == (10, 97)
    assert emu.usage_log[0]["usage"]["input_tokens"] > 0  # binary speech is billed, though its answer says nothing


def test_tts1_bills_characters_and_refuses_a_stream(emu: Emulator, m: Metered) -> None:
    m.azure.audio.speech.create(model="tts", input="Twelve chars", voice="alloy")
    assert emu.usage_log[-1]["usage"] == {"type": "characters", "characters": 12}
    with pytest.raises(openai.BadRequestError):
        m.azure.audio.speech.create(model="tts", input="x", voice="alloy", stream_format="sse")
    assert len(m.records) == 2


# -- images --------------------------------------------------------------------------------------------------


def test_gpt_image_1_bills_image_tokens(emu: Emulator, m: Metered) -> None:
    images = m.azure.images.generate(model="gpt-image-1", prompt="An isolated stop sign.", n=2, size="1024x1024",
                                     quality="medium")
    assert len(images.data) == 2 and images.usage is not None and images.usage.output_tokens == 2112
    record = m.one()
    assert record.api == "images" and record.deployment == "gpt-image-1"
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (22, 2112)


def test_dalle3_answers_one_image_without_usage(emu: Emulator, m: Metered) -> None:
    images = m.azure.images.generate(model="dall-e-3", prompt="A lighthouse", response_format="b64_json")
    assert images.usage is None and len(images.data) == 1 and images.data[0].b64_json
    with pytest.raises(openai.BadRequestError):
        m.azure.images.generate(model="dall-e-3", prompt="Two", n=2)
    assert [(r.api, r.status_code, r.usage) for r in m.records] == [("images", 200, None), ("images", 400, None)]
    assert emu.usage_log[0]["usage"] == {"type": "images", "images": 1, "size": "1024x1024", "quality": "standard"}


def test_an_image_edit_uploads_and_bills_the_input_image(m: Metered) -> None:
    edited = m.azure.images.edit(model="gpt-image-1", image=("in.png", b"\x89PNG" + bytes(2048)), prompt="Add a cat")
    assert edited.usage is not None and edited.usage.input_tokens_details.image_tokens == 194
    record = m.one()
    assert record.usage is not None and record.usage.output_tokens == 1056


def test_an_audio_model_refuses_chat(m: Metered) -> None:
    with pytest.raises(openai.BadRequestError, match=r"does not work with the specified model"):
        m.azure.chat.completions.create(model="whisper", messages=[{"role": "user", "content": "hi"}])


# -- compaction and Batch ------------------------------------------------------------------------------------


def test_compaction_bills_tokens(emu: Emulator, m: Metered) -> None:
    first = m.v1.responses.create(model="gpt-5", input="Create a landing page for a dog cafe.")
    compacted = m.v1.responses.compact(model="gpt-5", input="Keep going.", previous_response_id=first.id)
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    record = m.records[-1]
    assert (record.api, record.operation) == ("responses", "compact")
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == _billed_tokens(
        emu.usage_log[-1])
    assert len(m.records) == 2


def test_a_batch_is_uploaded_run_polled_and_its_output_metered_once(emu: Emulator, m: Metered) -> None:
    lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/chat/completions",
              "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}]}}
             for i in range(3)]
    lines.append({"custom_id": "bad", "method": "POST", "url": "/chat/completions",
                  "body": {"model": "no-such-deployment", "messages": []}})
    upload = "".join(json.dumps(line) + "\n" for line in lines).encode()
    file = m.v1.files.create(file=("batch.jsonl", upload), purpose="batch")
    job = m.v1.batches.create(input_file_id=file.id, endpoint="/chat/completions", completion_window="24h")
    assert job.status == "validating" and job.output_file_id is None
    job = m.v1.batches.retrieve(job.id)
    assert job.status == "completed" and job.request_counts is not None
    assert (job.request_counts.completed, job.request_counts.failed) == (3, 1)
    assert job.output_file_id is not None and job.error_file_id is not None
    content = m.v1.files.content(job.output_file_id).text
    assert [json.loads(line)["custom_id"] for line in content.splitlines()] == ["q0", "q1", "q2"]
    billed = [e for e in emu.usage_log if e["operation"] == "batch"]
    assert len(billed) == 3
    [record] = m.records  # the upload, the job and its polls bill nothing and are not metered
    assert (record.api, record.status_code) == ("batch_output", 200)
    assert record.usage is not None
    assert record.usage.input_tokens == sum(e["usage"]["prompt_tokens"] for e in billed)
    assert record.usage.output_tokens == sum(e["usage"]["completion_tokens"] for e in billed)
    assert job.usage is not None and job.usage.total_tokens == record.usage.total_tokens


def test_a_batch_completes_after_its_delay() -> None:
    with Emulator(EmulatorConfig(batch_delay_s=0.3)) as emu:
        client = openai.OpenAI(base_url=emu.url + "/openai/v1/", api_key=API_KEY, max_retries=0)
        line = {"custom_id": "1", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-5", "input": "hi"}}
        file = client.files.create(file=("b.jsonl", json.dumps(line).encode()), purpose="batch")
        job = client.batches.create(input_file_id=file.id, endpoint="/v1/responses", completion_window="24h")
        assert client.batches.retrieve(job.id).status == "validating"
        import time

        time.sleep(0.35)
        done = client.batches.retrieve(job.id)
        assert done.status == "completed" and done.output_file_id
        body = json.loads(client.files.content(done.output_file_id).text)["response"]["body"]
        assert body["object"] == "response" and body["usage"]["total_tokens"] > 0
        client.close()
