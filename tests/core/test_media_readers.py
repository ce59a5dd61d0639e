"""The readers of audio, images and Batch output bodies, and the upload's form field, on their own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meter.core import batch_output, multipart, observe_media
from meter.core.observe import Observation
from meter.core.record import Usage
from meter.core.sse import SSEScanner


def test_transcription_token_usage_reads_audio_input_tokens() -> None:
    usage = {"type": "tokens", "input_tokens": 17, "input_token_details": {"audio_tokens": 17, "text_tokens": 0},
             "output_tokens": 11, "total_tokens": 28}
    assert observe_media.media_usage(usage) == Usage(input_tokens=17, audio_input_tokens=17, output_tokens=11,
                                                     total_tokens=28)


@pytest.mark.parametrize(("seconds", "expected"), [(2, 2.0), (2.5, 2.5), (0, 0.0), ("2", None), (-1, None),
                                                   (True, None), (float("nan"), None), (10**12, None), (None, None)])
def test_seconds_are_a_duration_or_nothing(seconds: Any, expected: float | None) -> None:
    assert observe_media.seconds_of(seconds) == expected


def test_whisper_duration_is_kept_and_is_no_token_usage() -> None:
    obs = Observation()
    observe_media.read_json_body("transcriptions", 200, b'{"text":"hi","usage":{"type":"duration","seconds":2}}', obs)
    assert (obs.usage, obs.audio_seconds, obs.ended) == (None, 2.0, True)


def test_seconds_as_a_string_are_unknown_and_raise_after_the_rest_is_read() -> None:
    obs = Observation()
    with pytest.raises(observe_media.UnreadableUsage):
        observe_media.read_json_body("transcriptions", 200,
                                     b'{"text":"hi","usage":{"type":"duration","seconds":"2"}}', obs)
    assert (obs.usage, obs.audio_seconds, obs.ended) == (None, None, True)


def test_images_count_and_usage() -> None:
    body = {"created": 1, "data": [{"b64_json": "x"}, {"b64_json": "y"}],
            "usage": {"input_tokens": 22, "input_tokens_details": {"image_tokens": 0, "text_tokens": 22},
                      "output_tokens": 2112, "total_tokens": 2134}}
    obs = Observation()
    observe_media.read_json_body("images", 200, json.dumps(body).encode(), obs)
    assert obs.images == 2 and obs.usage == Usage(input_tokens=22, output_tokens=2112, total_tokens=2134)


@pytest.mark.parametrize("usage", [{"input_tokens": -5, "output_tokens": 3},
                                   {"input_tokens": 10**12, "output_tokens": 3},
                                   {"input_tokens": "22", "output_tokens": 3}, "many"])
def test_counts_that_are_not_counts_are_unknown(usage: Any) -> None:
    obs = Observation()
    with pytest.raises(observe_media.UnreadableUsage):
        observe_media.read_json_body("images", 200, json.dumps({"data": [{}], "usage": usage}).encode(), obs)
    assert obs.usage is None and obs.images == 1


def _stream(events: list[bytes]) -> Observation:
    obs = Observation()
    firsts: list[int] = []
    scanner = SSEScanner()
    observer = observe_media.MediaStreamObserver(obs, lambda: firsts.append(1), scanner)
    scanner.feed(b"".join(b"data: " + e + b"\n\n" for e in events), observer.on_event)
    assert len(firsts) == (1 if obs.content_events else 0)
    return obs


def test_transcription_stream_ends_with_its_usage() -> None:
    obs = _stream([b'{"type":"transcript.text.delta","delta":"Hel"}', b'{"type":"transcript.text.delta","delta":"lo"}',
                   b'{"type":"transcript.text.done","text":"Hello","usage":{"type":"tokens","input_tokens":14,'
                   b'"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":3,"total_tokens":17}}'])
    assert obs.ended and obs.content_events == 2
    assert obs.usage == Usage(input_tokens=14, audio_input_tokens=14, output_tokens=3, total_tokens=17)


def test_image_stream_counts_completed_images() -> None:
    obs = _stream([b'{"type":"image_generation.partial_image","b64_json":"AAAA","partial_image_index":0}',
                   b'{"type":"image_generation.completed","b64_json":"AAAA","usage":{"input_tokens":5,'
                   b'"output_tokens":272,"total_tokens":277}}'])
    assert obs.images == 1 and obs.usage is not None and obs.usage.output_tokens == 272


def test_a_stream_error_fails_the_call() -> None:
    obs = _stream([b'{"type":"error","error":{"type":"server_error","code":"boom","message":"x"}}'])
    assert obs.failed and obs.error_code == "boom" and obs.ended


# -- Batch output -------------------------------------------------------------------------------------

def _line(usage: Any, status: int = 200, model: str = "gpt-5-nano") -> bytes:
    body = {"id": "resp_1", "object": "response", "model": model, "usage": usage}
    return json.dumps({"id": "batch_req_1", "custom_id": "0",
                       "response": {"status_code": status, "request_id": "r", "body": body}, "error": None}).encode()


CHAT = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "completion_tokens_details": {"reasoning_tokens": 2}}
RESP = {"input_tokens": 7, "input_tokens_details": {"cached_tokens": 3}, "output_tokens": 4, "total_tokens": 11}


def _read(data: bytes, pieces: int = 1, at_end: bool = True) -> tuple[Observation, batch_output.BatchOutputReader]:
    reader = batch_output.BatchOutputReader()
    size = max(1, len(data) // pieces)
    for i in range(0, len(data), size):
        reader.feed(data[i:i + size])
    obs = Observation()
    reader.finish(obs, at_end)
    return obs, reader


@pytest.mark.parametrize("pieces", [1, 7, 1000])
def test_lines_are_summed_field_by_field_with_their_own_mapping(pieces: int) -> None:
    data = _line(CHAT) + b"\n" + _line(RESP) + b"\n\n" + _line(CHAT)  # no newline after the last line
    obs, reader = _read(data, pieces)
    assert obs.usage == Usage(input_tokens=27, cached_input_tokens=3, output_tokens=14, reasoning_output_tokens=4,
                              total_tokens=41)
    assert (reader.lines, reader.summed, reader.bad_lines, reader.model) == (3, 3, 0, "gpt-5-nano")


def test_a_line_that_is_not_json_is_left_out_once_and_the_rest_summed() -> None:
    data = b"\n".join([_line(CHAT), b'{"id": "batch_req_2", "custom_id": "1", "resp', b"garbage", _line(CHAT)])
    obs, reader = _read(data, 5)
    assert obs.usage is not None and obs.usage.input_tokens == 20
    assert reader.bad_lines == 2 and "line 2: not JSON" in str(reader.first_error)


@pytest.mark.parametrize("bad", [None, {"prompt_tokens": -1, "completion_tokens": 2},
                                 {"input_tokens": 10**12, "output_tokens": 1}, {"prompt_tokens": "10"}])
def test_a_line_without_usable_usage_is_a_bad_line(bad: Any) -> None:
    obs, reader = _read(_line(RESP) + b"\n" + _line(bad) + b"\n")
    assert obs.usage == Usage(input_tokens=7, cached_input_tokens=3, output_tokens=4, total_tokens=11)
    assert reader.bad_lines == 1


def test_failed_requests_bill_nothing_and_are_no_fault() -> None:
    failed = json.dumps({"id": "b2", "custom_id": "2", "response": None,
                         "error": {"code": "batch_expired", "message": "x"}}).encode()
    obs, reader = _read(b"\n".join([failed, _line({"error": "x"}, status=400), _line(RESP)]))
    assert obs.usage is not None and obs.usage.input_tokens == 7 and reader.bad_lines == 0


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n" + b"\x00" * 100,  # not JSON Lines
    b'{"custom_id": "0", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-5"}}\n' * 3,  # input file
    b'{"messages": [{"role": "user", "content": "hi"}]}\n',  # fine-tuning data
])
def test_another_file_is_not_read_and_no_fault(data: bytes) -> None:
    obs, reader = _read(data)
    assert obs.usage is None and reader.stopped and reader.bad_lines == 0


def test_a_line_too_long_to_keep_is_read_from_its_head_and_tail() -> None:
    filler = "x" * (batch_output.MAX_LINE_BYTES + 10)
    line = json.dumps({"id": "b", "custom_id": "0", "response": {"status_code": 200, "body": {
        "id": "r", "output": [{"text": filler}], "usage": RESP}}, "error": None}).encode()
    for pieces in (1, 300):
        obs, reader = _read(line + b"\n" + _line(CHAT) + b"\n", pieces)
        assert obs.usage is not None and obs.usage.input_tokens == 17, pieces
        assert reader.summed == 2


def test_a_download_stopped_early_keeps_what_was_summed() -> None:
    obs, _ = _read(_line(CHAT) + b"\n" + _line(CHAT)[:40], at_end=False)
    assert obs.usage is not None and obs.usage.input_tokens == 10 and not obs.ended


# -- the upload's form field --------------------------------------------------------------------------

def _form(fields: list[tuple[str, bytes, str | None]]) -> bytes:
    out = b""
    for name, value, filename in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--B\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
        if filename:
            out += b"Content-Type: audio/wav\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + b"--B--\r\n"


def test_the_model_field_is_read_from_the_head() -> None:
    body = _form([("model", b"gpt-4o-mini-transcribe", None), ("file", b"RIFF" * 1000, "a.wav")])
    assert multipart.form_field(body, "model") == "gpt-4o-mini-transcribe"
    assert multipart.form_field(body, "language") is None


def test_a_model_field_after_the_head_is_not_looked_for() -> None:
    body = _form([("file", b"\x00" * (multipart.HEAD_BYTES + 10), "a.wav"), ("model", b"whisper-1", None)])
    assert multipart.form_field(body, "model") is None


def test_a_file_named_model_is_not_a_model() -> None:
    assert multipart.form_field(_form([("model", b"x" * 20, "model.bin")]), "model") is None
    assert multipart.is_form("multipart/form-data; boundary=B") and not multipart.is_form("application/json")
