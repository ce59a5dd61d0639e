"""Audio, images and Batch output calls through the transports: one record, the caller's bytes untouched,
bad input a counted fault with what could be read on the record."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import pytest

import meter

V1 = "https://res.openai.azure.com/openai/v1"
STACKS = {"httpx": httpx, "httpx2": httpx2}


def _call(stack: Any, method: str, url: str, status: int, content_type: str, body: bytes,
          request: bytes | None = None, request_type: str = "application/json") -> tuple[meter.CallRecord, meter.Meter]:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)

    def handler(req: Any) -> Any:
        return stack.Response(status, headers={"content-type": content_type}, content=body)

    with stack.Client(transport=meter.MeteredTransport(stack.MockTransport(handler), meter=m)) as client:
        with client.stream(method, url, content=request, headers={"content-type": request_type}) as response:
            got = b"".join(response.iter_bytes())
    assert got == body, "the caller must get the body unchanged"
    m.flush()
    (record,) = records
    return record, m


@pytest.mark.parametrize("stack", STACKS)
def test_binary_speech_is_not_read_and_no_fault(stack: str) -> None:
    audio = b"ID3\x04" + bytes(range(256)) * 20000  # 5 MB of "mp3"
    record, m = _call(STACKS[stack], "POST", V1 + "/audio/speech", 200, "audio/mpeg", audio,
                      b'{"model":"tts-1","input":"hello","voice":"alloy"}')
    assert (record.api, record.outcome, record.usage, record.request_model) == ("speech", "ok", None, "tts-1")
    assert m.faults == {}


@pytest.mark.parametrize("stack", STACKS)
def test_a_text_transcript_has_no_usage_and_no_fault(stack: str) -> None:
    record, m = _call(STACKS[stack], "POST", V1 + "/audio/transcriptions", 200, "text/plain", b"hello there\n")
    assert (record.api, record.outcome, record.usage) == ("transcriptions", "ok", None) and m.faults == {}


@pytest.mark.parametrize("stack", STACKS)
def test_seconds_as_a_string_are_a_fault_and_no_usage(stack: str) -> None:
    body = b'{"text":"hi","usage":{"type":"duration","seconds":"2"}}'
    record, m = _call(STACKS[stack], "POST", V1 + "/audio/translations", 200, "application/json", body)
    assert (record.api, record.outcome, record.usage) == ("translations", "ok", None)
    assert m.faults == {"parse": 1}


@pytest.mark.parametrize("usage", [{"input_tokens": -22, "output_tokens": 2112, "total_tokens": 2090},
                                   {"input_tokens": 22, "output_tokens": 10**15, "total_tokens": 10**15}])
def test_images_with_counts_that_are_not_counts_give_unknown_usage_and_a_fault(usage: dict[str, int]) -> None:
    body = json.dumps({"created": 1, "data": [{"b64_json": "AAAA"}], "usage": usage}).encode()
    record, m = _call(httpx2, "POST", V1 + "/images/generations", 200, "application/json", body,
                      b'{"model":"gpt-image-1","prompt":"a stop sign"}')
    assert (record.api, record.outcome, record.usage, record.request_model) == ("images", "ok", None, "gpt-image-1")
    assert m.faults == {"parse": 1}


@pytest.mark.parametrize("stack", STACKS)
def test_an_images_error_is_an_http_error(stack: str) -> None:
    body = b'{"error":{"code":"content_policy_violation","message":"no","type":"invalid_request_error"}}'
    record, m = _call(STACKS[stack], "POST", V1 + "/images/edits", 400, "application/json", body)
    assert (record.outcome, record.error_code, record.usage) == ("http_error", "content_policy_violation", None)
    assert m.faults == {}


def _line(usage: Any) -> bytes:
    return json.dumps({"id": "b", "custom_id": "0", "response": {"status_code": 200, "body": {
        "id": "chatcmpl-1", "model": "gpt-4o-mini", "usage": usage}}, "error": None}).encode()


GOOD = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(("bad", "why"), [
    (b'{"id": "b", "custom_id": "1", "response": {"status_code": 200, "bo', "not JSON"),
    (_line(None), "no usage"),
    (_line({"prompt_tokens": -3, "completion_tokens": 1}), "negative"),
    (_line({"prompt_tokens": 10**13, "completion_tokens": 1}), "absurd"),
], ids=["not-json", "no-usage", "negative", "absurd"])
def test_a_bad_output_line_is_one_fault_and_the_rest_is_summed(stack: str, bad: bytes, why: str) -> None:
    body = b"\n".join([_line(GOOD), bad, bad, _line(GOOD), b""])
    record, m = _call(STACKS[stack], "GET", "https://api.openai.com/v1/files/file-1/content", 200,
                      "application/octet-stream", body)
    assert (record.api, record.outcome, record.response_model) == ("batch_output", "ok", None)
    assert record.usage is not None and (record.usage.input_tokens, record.usage.total_tokens) == (20, 30), why
    assert m.faults == {"batch_line": 1}


def test_a_missing_output_file_is_an_http_error() -> None:
    body = b'{"error":{"message":"No such File object","type":"invalid_request_error","code":null}}'
    record, m = _call(httpx2, "GET", "https://api.openai.com/v1/files/file-x/content", 404, "application/json", body)
    assert (record.outcome, record.error_type, record.usage) == ("http_error", "invalid_request_error", None)
    assert m.faults == {}


def test_a_gzipped_output_file_is_read_decoded() -> None:
    import gzip
    raw = b"\n".join([_line(GOOD)] * 3) + b"\n"
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)

    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/octet-stream",
                                             "content-encoding": "gzip"}, content=gzip.compress(raw))

    with httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(handler), meter=m)) as client:
        assert client.get("https://api.openai.com/v1/files/file-1/content").content == raw
    m.flush()
    (record,) = records
    assert record.usage is not None and record.usage.input_tokens == 30 and not m.faults


@pytest.mark.parametrize("stack", STACKS)
def test_an_upload_in_memory_names_its_model(stack: str) -> None:
    form = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\nRIFF\x00\x00\r\n--B\r\n"
            b'Content-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--B--\r\n')
    record, m = _call(STACKS[stack], "POST", "https://res.openai.azure.com/openai/deployments/wh/audio/transcriptions"
                      "?api-version=2024-10-21", 200, "application/json",
                      b'{"text":"hi","usage":{"type":"duration","seconds":2}}', form, "multipart/form-data; boundary=B")
    assert (record.deployment, record.request_model, record.usage) == ("wh", "whisper-1", None)
    assert m.faults == {}
