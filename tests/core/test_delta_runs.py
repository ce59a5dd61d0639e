"""A run of held steady deltas is counted at once, and never a chunk the one-by-one test would not count.

``delta_runs`` replaces the observers' per-chunk ``take`` for the held chunks of a stream, on the metering
worker. Its tests must be sufficient for ``take``'s: every chunk it counts, ``take`` counts; what it does not
count is read one by one. Here: the streams meter meets (Azure's and OpenAI's key orders, with and without
a null usage, Responses with and without ``event:`` lines) are counted whole up to their tail; hostile
chunks (a stray line break or carriage return, a finish reason, a usage or error key, another shape, an
event cut in two or two in one chunk) never make it count a chunk ``take`` refuses; and a call's record is
the same with and without it, whatever the chunking.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meter
from meter.core import observe
from meter.core.sse import SSEScanner

Observer = observe.ChatStreamObserver | observe.ResponsesStreamObserver


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def azure_chat(text: str, usage_null: bool = False) -> bytes:
    """Azure's key order (sorted), as the conformance recordings have it."""
    obj: dict[str, object] = {
        "choices": [{"content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
                     "delta": {"content": text}, "finish_reason": None, "index": 0, "logprobs": None}],
        "created": 1731466213, "id": "chatcmpl-ASxkLviK", "model": "gpt-4o-2024-11-20",
        "object": "chat.completion.chunk", "system_fingerprint": "fp_b705f0c291"}
    if usage_null:
        obj["usage"] = None
    return b"data: " + _compact(obj) + b"\n\n"


def openai_chat(text: str) -> bytes:
    """OpenAI's order: the finish reason last in the choice, then a null usage last of all."""
    obj = {"id": "chatcmpl-BX1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
           "service_tier": "default", "system_fingerprint": "fp_1",
           "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}],
           "usage": None}
    return b"data: " + _compact(obj) + b"\n\n"


def responses_delta(text: str, event_line: bool = True) -> bytes:
    data = _compact({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1",
                     "output_index": 0, "content_index": 0, "delta": text, "logprobs": []})
    return (b"event: response.output_text.delta\n" if event_line else b"") + b"data: " + data + b"\n\n"


CHAT_TAIL = [b'data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,'
             b'"logprobs":null}],"created":1731466213,"id":"chatcmpl-ASxkLviK","model":"gpt-4o-2024-11-20",'
             b'"object":"chat.completion.chunk","system_fingerprint":"fp_b705f0c291"}\n\n',
             b'data: {"choices":[],"id":"chatcmpl-ASxkLviK","usage":{"completion_tokens":9,"prompt_tokens":5,'
             b'"total_tokens":14}}\n\n', b"data: [DONE]\n\n"]
RESPONSES_TAIL = [b'event: response.output_text.done\ndata: {"type":"response.output_text.done","text":"x"}\n\n',
                  b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1",'
                  b'"status":"completed","usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}}}\n\n']

WORDS = ["Hello", " world", ' "quoted"', " \\n escaped", " finish_reason", ' \\"usage\\":', " ü", ""]


def steady(kind: str) -> Observer:
    """An observer in the steady state, as ``take`` leaves it after the stream's head."""
    obs = observe.Observation()
    obs.content_events, obs.response_id, obs.response_model = 1, "id-1", "gpt-4o"
    observer: Observer
    if kind == "chat":
        observer = observe.ChatStreamObserver(obs, lambda: None, SSEScanner())
    else:
        observer = observe.ResponsesStreamObserver(obs, lambda: None, SSEScanner())
    observer.steady = True
    return observer


FORMS: dict[str, tuple[str, Callable[[str], bytes], list[bytes]]] = {
    "azure chat": ("chat", azure_chat, CHAT_TAIL),
    "azure chat, null usage": ("chat", lambda t: azure_chat(t, usage_null=True), CHAT_TAIL),
    "openai chat": ("chat", openai_chat, CHAT_TAIL),
    "responses": ("responses", responses_delta, RESPONSES_TAIL),
    "responses, no event lines": ("responses", lambda t: responses_delta(t, event_line=False), RESPONSES_TAIL),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_steady_run_is_counted_at_once_up_to_the_streams_tail(form: str) -> None:
    kind, make, tail = FORMS[form]
    chunks = [make(WORDS[i % len(WORDS)]) for i in range(300)] + tail
    observer = steady(kind)
    assert observer.take_run(chunks) == 300
    assert observer.obs.content_events == 1 + 300
    one_by_one = steady(kind)
    assert sum(one_by_one.take(chunk) for chunk in chunks[:300]) == 300  # what it stands for


def test_nothing_is_counted_unless_the_observer_is_steady_and_its_scanner_idle() -> None:
    chunks = [azure_chat("x")] * 10
    observer = steady("chat")
    observer.steady = False
    assert observer.take_run(chunks) == 0
    observer = steady("chat")
    observer.scanner.feed(b"data: {\"cut")  # an event half read
    assert observer.take_run(chunks) == 0
    assert observer.obs.content_events == 1


def _mutations(chunk: bytes, how: str, at: int) -> list[bytes]:
    """One chunk made hostile (or split, or doubled): what a gateway, a bug or an attacker may send."""
    at = at % (len(chunk) + 1)
    if how == "cr":
        return [chunk[:at] + b"\r" + chunk[at:]]
    if how == "lf":
        return [chunk[:at] + b"\n" + chunk[at:]]
    if how == "split":
        return [chunk[:at], chunk[at:]] if 0 < at < len(chunk) else [chunk]
    if how == "double":
        return [chunk + chunk]
    if how == "stop":
        return [chunk.replace(b'"finish_reason":null', b'"finish_reason":"stop"')]
    if how == "usage":
        return [chunk.replace(b'"logprobs":null}]', b'"logprobs":null}],"usage":{"total_tokens":1}')]
    if how == "error":
        return [chunk.replace(b'"logprobs":null}]', b'"logprobs":null}],"error":{"code":"x"}')]
    if how == "other id":
        return [chunk.replace(b"chatcmpl-", b"chatcmpl-other-").replace(b"msg_1", b"msg_2")]
    if how == "no space":
        return [chunk.replace(b"data: ", b"data:", 1)]
    if how == "type":
        return [chunk.replace(b'"type":"response.output_text.delta"', b'"type":"response.completed"')]
    if how == "type lf":
        return [chunk.replace(b'"type":"response.output_text', b'"type":"response.\noutput_text')]
    if how == "long tail":
        return [chunk.replace(b'"system_fingerprint":"fp_b705f0c291"', b'"system_fingerprint":"' + b"f" * 600 + b'"')]
    if how == "long tail, stop first":  # ``take`` then reads the first finish reason, not the last
        return [chunk.replace(b'"system_fingerprint":"fp_b705f0c291"', b'"system_fingerprint":"' + b"f" * 600 + b'"')
                .replace(b'"delta":', b'"finish_reason":"stop","delta":')]
    if how == "two finish":
        return [chunk.replace(b'"logprobs":null}]', b'"logprobs":null},{"finish_reason":"stop"}]')]
    return [chunk]


HOW = ["same"] * 6 + ["cr", "lf", "split", "double", "stop", "usage", "error", "other id", "no space", "type",
                      "type lf", "long tail", "long tail, stop first", "two finish"]


@settings(max_examples=400, deadline=None)
@given(form=st.sampled_from(sorted(FORMS)),
       plan=st.lists(st.tuples(st.sampled_from(HOW), st.integers(0, 2000), st.sampled_from(WORDS)), max_size=40),
       with_tail=st.booleans())
def test_every_chunk_a_run_counts_is_one_the_chunk_test_counts(
        form: str, plan: list[tuple[str, int, str]], with_tail: bool) -> None:
    kind, make, tail = FORMS[form]
    chunks = [piece for how, at, word in plan for piece in _mutations(make(word), how, at)]
    if with_tail:
        chunks += tail
    observer = steady(kind)
    counted = observer.take_run(chunks)
    one_by_one = steady(kind)
    for chunk in chunks[:counted]:
        assert one_by_one.take(chunk), (counted, chunk)
    assert observer.obs.content_events == one_by_one.obs.content_events


@pytest.mark.parametrize("hostile", ["cr", "lf", "stop", "usage", "error", "type lf", "long tail, stop first",
                                     "two finish"])
def test_a_hostile_chunk_in_a_run_ends_the_run_before_it(hostile: str) -> None:
    refused = 0
    for form in FORMS:
        kind, make, _ = FORMS[form]
        bad = _mutations(make("x"), hostile, 40)
        if all(steady(kind).take(chunk) for chunk in bad):
            continue  # not hostile to this form (the mutation does not apply, or the chunk test takes it)
        refused += 1
        for chunks in ([make("a")] * 5 + bad + [make("b")] * 5, bad + [make("b")] * 5):
            observer = steady(kind)
            assert observer.take_run(chunks) <= chunks.index(bad[0]), (form, hostile)
    assert refused, "the mutation is refused by no form: it tests nothing"


# -- a call's record is the same with and without runs, whatever the chunking ------------------------

CHAT_URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
RESP_URL = "https://x.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
CHAT_HEAD = [b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}\n\n',
             b'data: {"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},'
             b'"finish_reason":null,"index":0,"logprobs":null}],"created":1731466213,"id":"chatcmpl-ASxkLviK",'
             b'"model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_b705f0c291"}\n\n']
RESPONSES_HEAD = [b'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1",'
                  b'"model":"gpt-4o","status":"in_progress","usage":null}}\n\n']


def _record(url: str, chunks: list[bytes], runs: bool) -> meter.CallRecord:
    with pytest.MonkeyPatch.context() as patch:
        if not runs:
            patch.setattr(observe.ChatStreamObserver, "take_run", lambda self, chunks: 0)
            patch.setattr(observe.ResponsesStreamObserver, "take_run", lambda self, chunks: 0)
        records: list[meter.CallRecord] = []

        class Body(httpx2.SyncByteStream):
            def __iter__(self):  # type: ignore[no-untyped-def]
                yield from chunks

        def azure(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Body())

        m = meter.Meter(otel=False, prometheus=False, on_record=records.append)
        client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
        body = {"model": "gpt-4o", "input": "hi", "stream": True} if url == RESP_URL else \
            {"messages": [{"role": "user", "content": "hi"}], "stream": True}
        with client.stream("POST", url, json=body) as response:
            assert b"".join(response.iter_raw()) == b"".join(chunks)
        m.close()
        assert len(records) == 1
        return records[0]


def _same(a: meter.CallRecord, b: meter.CallRecord) -> None:
    for field in ("outcome", "usage", "usage_source", "finish_reasons", "response_id", "response_model"):
        assert getattr(a, field) == getattr(b, field), field


@settings(max_examples=60, deadline=None)
@given(form=st.sampled_from(sorted(FORMS)),
       plan=st.lists(st.tuples(st.sampled_from(HOW), st.integers(0, 2000), st.sampled_from(WORDS)),
                     min_size=1, max_size=30),
       with_tail=st.booleans())
def test_a_records_usage_is_the_same_with_and_without_runs(
        form: str, plan: list[tuple[str, int, str]], with_tail: bool) -> None:
    kind, make, tail = FORMS[form]
    head, url = (CHAT_HEAD, CHAT_URL) if kind == "chat" else (RESPONSES_HEAD, RESP_URL)
    # The first deltas bring the stream to its steady state; the plan's chunks are then held.
    chunks = head + [make("a"), make("b")] + [p for how, at, w in plan for p in _mutations(make(w), how, at)]
    if with_tail:
        chunks += tail if kind == "responses" else [t for t in tail if b'"usage"' not in t]  # estimated
    _same(_record(url, chunks, True), _record(url, chunks, False))
