"""An in-process Azure OpenAI for benchmarks: canned answers shaped like the service's.

The bodies follow what Azure sends (see ``tests/fixtures`` and the conformance corpus):
sorted keys, content-filter results on every choice, a first stream chunk with empty
choices and the prompt filter results, one SSE event per body chunk, ``include_usage``
chunks, the Responses event sequence. The transport answers at once, so a ratio to it
is the worst case for instrumentation: the SDK's own work is all that is compared.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2

MODEL = "gpt-4o-2024-11-20"
CHAT_ID = "chatcmpl-BENCH00000000000000000000000"
RESPONSE_ID = "resp_bench0000000000000000000000000000000000000000000"
MESSAGE_ID = "msg_bench00000000000000000000000000000000000000000000"
_TEXT = ("Azure OpenAI bills each call by the tokens it reads and writes, at the price of the "
         "deployment type and region it runs in; cached input is cheaper.")
WORDS = tuple(_TEXT.split(" "))
_SAFE = {"filtered": False, "severity": "safe"}
CHOICE_FILTER = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": CHOICE_FILTER}]
CHAT_USAGE = {"completion_tokens": 180, "completion_tokens_details": {"accepted_prediction_tokens": 0,
              "audio_tokens": 0, "reasoning_tokens": 0, "rejected_prediction_tokens": 0},
              "prompt_tokens": 1200, "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 1024},
              "total_tokens": 1380}
RESPONSES_USAGE = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
                   "output_tokens": 180, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 1380}
HEADERS = [("x-ms-region", "East US 2"), ("apim-request-id", "2b1c7f9e-0000-4000-8000-000000000000"),
           ("x-request-id", "9d3e5a1c-0000-4000-8000-000000000000"), ("x-ratelimit-remaining-tokens", "449000"),
           ("x-ratelimit-remaining-requests", "4499"), ("x-ms-deployment-name", "gpt-4o")]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _answer(n: int) -> list[str]:
    return [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(n)]


def chat_json() -> bytes:
    return _dumps({
        "choices": [{"content_filter_results": CHOICE_FILTER, "finish_reason": "stop", "index": 0, "logprobs": None,
                     "message": {"annotations": [], "content": "".join(_answer(60)), "refusal": None,
                                 "role": "assistant"}}],
        "created": 1764590000, "id": CHAT_ID, "model": MODEL, "object": "chat.completion",
        "prompt_filter_results": PROMPT_FILTER, "system_fingerprint": "fp_bench", "usage": CHAT_USAGE,
    })


def chat_events(n: int) -> list[bytes]:
    def chunk(choices: list[Any], **extra: Any) -> bytes:
        return b"data: " + _dumps({"choices": choices, "created": 1764590000, "id": CHAT_ID, "model": MODEL,
                                   "object": "chat.completion.chunk", "system_fingerprint": "fp_bench",
                                   **extra}) + b"\n\n"

    events = [b"data: " + _dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                  "prompt_filter_results": PROMPT_FILTER}) + b"\n\n"]
    for i, word in enumerate(_answer(n)):
        delta = {"content": word} if i else {"content": word, "refusal": None, "role": "assistant"}
        events.append(chunk([{"content_filter_results": CHOICE_FILTER, "delta": delta, "finish_reason": None,
                              "index": 0, "logprobs": None}], usage=None))
    events.append(chunk([{"content_filter_results": {}, "delta": {}, "finish_reason": "stop", "index": 0,
                          "logprobs": None}], usage=None))
    events.append(chunk([], usage=CHAT_USAGE))
    events.append(b"data: [DONE]\n\n")
    return events


def _response(status: str, text: str | None, usage: Any) -> dict[str, Any]:
    output = [] if text is None else [{"content": [{"annotations": [], "logprobs": [], "text": text,
                                                    "type": "output_text"}],
                                       "id": MESSAGE_ID, "role": "assistant", "status": "completed",
                                       "type": "message"}]
    return {"background": False, "created_at": 1764590000, "error": None, "id": RESPONSE_ID,
            "incomplete_details": None, "instructions": None, "max_output_tokens": None, "metadata": {},
            "model": MODEL, "object": "response", "output": output, "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
            "service_tier": "default", "status": status, "store": True, "temperature": 1.0,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": None}


def responses_json() -> bytes:
    return _dumps(_response("completed", "".join(_answer(60)), RESPONSES_USAGE))


def responses_events(n: int) -> list[bytes]:
    sequence = iter(range(10**9))

    def event(kind: str, **fields: Any) -> bytes:
        # Azure's (and OpenAI's) order: "type" first, then the rest.
        body = json.dumps({"type": kind, "sequence_number": next(sequence), **fields}, separators=(",", ":"))
        return f"event: {kind}\ndata: {body}\n\n".encode()

    words = _answer(n)
    text = "".join(words)
    part = {"annotations": [], "logprobs": [], "text": "", "type": "output_text"}
    item = {"content": [], "id": MESSAGE_ID, "role": "assistant", "status": "in_progress", "type": "message"}
    events = [event("response.created", response=_response("in_progress", None, None)),
              event("response.in_progress", response=_response("in_progress", None, None)),
              event("response.output_item.added", item=item, output_index=0),
              event("response.content_part.added", content_index=0, item_id=MESSAGE_ID, output_index=0, part=part)]
    events += [event("response.output_text.delta", content_index=0, delta=word, item_id=MESSAGE_ID, logprobs=[],
                     output_index=0) for word in words]
    events += [event("response.output_text.done", content_index=0, item_id=MESSAGE_ID, logprobs=[], output_index=0,
                     text=text),
               event("response.content_part.done", content_index=0, item_id=MESSAGE_ID, output_index=0,
                     part={**part, "text": text}),
               event("response.output_item.done", item={**item, "status": "completed"}, output_index=0),
               event("response.completed", response=_response("completed", text, RESPONSES_USAGE))]
    return events


class _Chunks(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


class _AsyncChunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class Answers:
    """The four canned answers; the request's path and its ``"stream"`` pick one.

    Every Responses answer gets a fresh id (same length, one ``bytes.replace`` per event
    that carries it): meter rightly counts a response id it has already metered as a
    repeat, and a benchmark that sent one id over and over would measure that shortcut.
    """

    def __init__(self, deltas: int = 500) -> None:
        self.chat_json = chat_json()
        self.chat_events = chat_events(deltas)
        self.responses_json = responses_json()
        self.responses_events = responses_events(deltas)
        self._id = RESPONSE_ID.encode()
        self._with_id = [i for i, event in enumerate(self.responses_events) if self._id in event]
        self._count = 0

    def _fresh_id(self) -> bytes:
        self._count += 1
        suffix = b"%d" % self._count
        return self._id[: len(self._id) - len(suffix)] + suffix

    def pick(self, request: httpx2.Request) -> tuple[list[tuple[str, str]], bytes | list[bytes]]:
        body = request.content
        stream = b'"stream":true' in body or b'"stream": true' in body
        responses = request.url.path.endswith("/responses")
        if stream:
            events = self.chat_events
            if responses:
                fresh = self._fresh_id()
                events = list(self.responses_events)
                for i in self._with_id:
                    events[i] = events[i].replace(self._id, fresh)
            return [*HEADERS, ("content-type", "text/event-stream; charset=utf-8")], events
        answer = self.chat_json
        if responses:
            answer = self.responses_json.replace(self._id, self._fresh_id())
        return [*HEADERS, ("content-type", "application/json")], answer


class AzureTransport(httpx2.BaseTransport):
    """Sync transport answering every request at once with a canned Azure body (or after ``latency_s``, a
    sleep that releases the GIL as waiting for the network does)."""

    def __init__(self, answers: Answers, latency_s: float = 0.0) -> None:
        self.answers = answers
        self.latency_s = latency_s

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.latency_s:
            time.sleep(self.latency_s)
        headers, body = self.answers.pick(request)
        if isinstance(body, list):
            return httpx2.Response(200, headers=headers, stream=_Chunks(body), request=request)
        return httpx2.Response(200, headers=headers, content=body, request=request)


class AsyncAzureTransport(httpx2.AsyncBaseTransport):
    """The async twin of ``AzureTransport``."""

    def __init__(self, answers: Answers, latency_s: float = 0.0) -> None:
        self.answers = answers
        self.latency_s = latency_s

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        headers, body = self.answers.pick(request)
        if isinstance(body, list):
            return httpx2.Response(200, headers=headers, stream=_AsyncChunks(body), request=request)
        return httpx2.Response(200, headers=headers, content=body, request=request)
