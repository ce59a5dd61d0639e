"""Observers: what a response body says about usage, model, id and finish.

One small state machine per body kind. Stream observers see event payloads
from ``sse.SSEScanner`` and decide with cheap substring tests which few events
to JSON-parse (the usage chunk, finish chunks, terminal Responses events);
the hundreds of delta events in between are never parsed. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meter.core import delta_runs, partial, tools
from meter.core import usage as usage_mod
from meter.core.record import Api, Usage
from meter.core.sse import SSEScanner
from meter.core.tiers import tier_name
from meter.core.tools import ToolItems

_TERMINAL_RESPONSE_TYPES = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})
_OPENING_RESPONSE_TYPES = frozenset({b"response.created", b"response.queued", b"response.in_progress"})
_OTHER_OUTPUT_MARKERS = (b'"tool_calls"', b'"refusal":"', b'"refusal": "', b'"function_call"', b'"audio":{')


@dataclass(slots=True)
class Observation:
    """What has been learned from a body so far. Observers fill it in place."""

    response_id: str | None = None
    response_model: str | None = None
    usage: Usage | None = None
    finish_reasons: dict[int, str] = field(default_factory=dict)
    status: str | None = None
    """Responses ``status`` of the terminal object (completed / incomplete / failed / queued ...)."""
    incomplete_reason: str | None = None
    failed: bool = False
    """The body reported an error (an error body, a mid-stream error, ``response.failed``)."""
    error_code: str | None = None
    """The service's own ``error.code``, as a string; ``None`` when it sent none."""
    error_kind: str | None = None
    """A low-cardinality error type: the code, else the error's ``type``."""
    ended: bool = False
    """The body reached its natural end marker (``[DONE]`` or a terminal Responses event)."""
    content_events: int = 0
    """Delta events that carried output: the basis of the output-token estimate."""
    output_text: list[str] | None = None
    """Output text, only collected when content capture is on."""
    audio_seconds: float | None = None
    """Seconds of audio an audio call reported (whisper's ``usage: {type: duration}``), for billing by time."""
    images: int | None = None
    """Images an images call returned (``data`` items, or ``*.completed`` events of a stream)."""
    service_tier: str | None = None
    """The tier the body says served the call (``service_tier``, folded by ``tiers.tier_name``)."""
    batch_model: str | None = None
    """The model a Batch output file's answers name: what its sum is priced as (the file itself names none)."""
    tools: ToolItems | None = None
    """The built-in tool items the response has shown (Responses), made at the first one."""

    def tool_items(self) -> ToolItems:
        if self.tools is None:
            self.tools = ToolItems()
        return self.tools

    def finish_list(self, api: Api) -> tuple[str, ...] | None:
        """Chat: finish reasons by choice index. Responses: the incomplete reason, else the status."""
        if api == "chat":
            return tuple(self.finish_reasons[i] for i in sorted(self.finish_reasons))
        if api == "responses" and self.status is not None:
            if self.status == "incomplete" and self.incomplete_reason:
                return (self.incomplete_reason,)
            return (self.status,)
        return None

    def set_error(self, error: Any) -> None:
        """Note an ``error`` object (Azure sends codes as strings of digits or as ints)."""
        self.failed = True
        if isinstance(error, dict):
            code = error.get("code")
            if code is not None and not isinstance(code, bool) and code != "":
                self.error_code = str(code)
            kind = error.get("type")
            self.error_kind = self.error_code or (str(kind) if isinstance(kind, str) and kind else None)


def _has_output(data: bytes) -> bool:
    """Does a chat chunk carry generated output (non-empty content, a tool call, a refusal)?

    Counts instead of parsing: a chunk with more ``"content":"`` than
    ``"content":""`` has some non-empty content.
    """
    n = data.count(b'"content":"')
    if n:
        return n > data.count(b'"content":""')
    n = data.count(b'"content": "')
    if n:
        return n > data.count(b'"content": ""')
    return any([m in data for m in _OTHER_OUTPUT_MARKERS])


def _count_run(observer: ChatStreamObserver | ResponsesStreamObserver, deltas: Callable[[list[bytes]], int],
               chunks: list[bytes]) -> int:
    """A run of held chunks counted at once: only in the steady state, with the scanner between events (as
    ``take`` is for one chunk)."""
    if not (observer.steady and observer.scanner.idle):
        return 0
    n = deltas(chunks)
    observer.obs.content_events += n
    return n


class ChatStreamObserver:
    """Chat Completions SSE: usage from the chunk whose ``usage`` is an object.

    Never uses "empty choices" as the usage signal: Azure's first chunk (prompt
    filter results) has empty choices too. Usage is per request, so the last
    usage object wins; chunk usages are never summed.
    """

    __slots__ = ("capture", "obs", "on_first_token", "scanner", "single_choice", "steady")

    def __init__(self, obs: Observation, on_first_token: Callable[[], None], scanner: SSEScanner,
                 capture: bool = False, single_choice: bool = True) -> None:
        self.steady = False
        """Output flowing, identity known, one choice, no capture: ``take`` may count deltas."""
        self.obs = obs
        self.on_first_token = on_first_token
        self.scanner = scanner
        self.capture = capture
        self.single_choice = single_choice

    def take(self, chunk: bytes) -> bool:
        """Count ``chunk`` right here if it is exactly one steady-state delta event.

        The hot path of a chat stream: with the scanner between events, identity
        known and output flowing, a chunk that is one ``data:`` line whose
        (single) choice has a null finish reason, with a null usage or none at
        all and no error, is just one more delta. Azure's key order (and
        OpenAI's) puts ``usage`` last when it is there, so that case is decided
        from the tail; a chunk without ``usage`` (an api-version or gateway that
        leaves it out, keys sorted) is checked for the keys that would matter.
        An unescaped ``"key":`` only occurs as a JSON key (quotes inside text are
        escaped), so these byte tests cannot be fooled by generated text; at worst
        they send a chunk to the full path. Anything else: ``False``, and the
        chunk goes through the scanner and ``on_event``.
        """
        if not self.steady:
            obs = self.obs
            if not (obs.content_events and self.single_choice and obs.response_id is not None and not self.capture):
                return False
            self.steady = True  # all four only ever turn true: decided once per stream
        if not (self.scanner.idle and chunk.endswith(b"}\n\n") and chunk.startswith(b"data: {")):
            return False
        n = len(chunk)
        if chunk.find(b"\n") != n - 2 or b"\r" in chunk:  # exactly one line, as the scanner would see it
            return False
        if chunk.endswith(b'"usage":null}\n\n'):
            i = chunk.rfind(b'"finish_reason":', max(0, n - 512))
            if i < 0:
                i = chunk.find(b'"finish_reason":')
        else:
            i = chunk.rfind(b'"finish_reason":')
            # Without a null usage at the end, look after the choice for a usage or an error object:
            # both Azure's sorted keys and OpenAI's order put the top-level keys that follow the
            # choices there. A usage object earlier in a delta chunk could be missed, and would not
            # matter: usage is cumulative, the last one wins, and the last one comes with the finish
            # reason or in a chunk without choices, which both take the full path.
            if i < 0 or chunk.find(b'"usage"', i) >= 0 or chunk.find(b'"error"', i) >= 0:
                return False
        if i >= 0 and chunk[i + 16:i + 17] == b"n":
            self.obs.content_events += 1
            return True
        return False

    def take_run(self, chunks: list[bytes]) -> int:
        """``take`` over held chunks at once: how many leading ones it counted (``delta_runs``)."""
        return _count_run(self, delta_runs.chat_deltas, chunks)

    def on_event(self, data: bytes) -> None:
        obs = self.obs
        if obs.content_events and obs.response_id is not None and not self.capture \
                and data.endswith(b'"usage":null}'):
            # Steady state (identity known, output started, the chunk's usage is null):
            # the only thing left to spot is a finish reason. Every such chunk counts
            # as an output delta for the estimate.
            obs.content_events += 1
            if b'"finish_reason":"' in data or b'"finish_reason": "' in data:
                self._parse(data)
            return
        if data == b"[DONE]":
            obs.ended = True
            return
        if _has_output(data):
            if obs.content_events == 0:
                self.on_first_token()
            obs.content_events += 1
            if self.capture:
                self._parse(data)
                return
        # Parse only the chunks that say something: identity (until known), a usage
        # object, a finish reason, an error. Delta chunks pass these tests unparsed.
        if (
            obs.response_model is None
            or obs.response_id is None
            or data.startswith(b'{"error"')
            or b'"usage":{' in data
            or b'"finish_reason":"' in data
            or b'"error"' in data
            or (b'": ' in data and (b'"usage": {' in data or b'"finish_reason": "' in data))
        ):
            self._parse(data)

    def on_oversized(self, head: bytes, tail: bytes) -> None:
        """A chunk too big to keep whole: identity from its start, usage and finish from its end."""
        obs = self.obs
        if obs.content_events == 0:
            self.on_first_token()
        obs.content_events += 1
        fields = partial.leading_fields(head)
        if obs.response_id is None and isinstance(fields.get("id"), str):
            obs.response_id = fields["id"]
        if obs.response_model is None and isinstance(fields.get("model"), str):
            obs.response_model = fields["model"]
        usage = partial.last_object(tail, b"usage")
        if usage is not None:
            obs.usage = usage_mod.from_chat(usage)
        reason = partial.last_string(tail, b"finish_reason")
        if reason is not None and self.single_choice:
            obs.finish_reasons[0] = reason

    def _parse(self, data: bytes) -> None:
        obj = json.loads(data)
        if not isinstance(obj, dict):
            return
        obs = self.obs
        if obj.get("error"):
            obs.set_error(obj["error"])
            return
        _read_identity(obj, obs)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            obs.usage = usage_mod.from_chat(usage)
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                reason = choice.get("finish_reason")
                index = choice.get("index", 0)
                if isinstance(reason, str) and isinstance(index, int):
                    obs.finish_reasons[index] = reason
                if self.capture:
                    delta = choice.get("delta")
                    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                        if obs.output_text is None:
                            obs.output_text = []
                        obs.output_text.append(delta["content"])


class ResponsesStreamObserver:
    """Responses API SSE: keyed on the JSON ``type``, never on the ``event:`` line."""

    __slots__ = ("capture", "obs", "on_first_token", "scanner", "steady")

    def __init__(self, obs: Observation, on_first_token: Callable[[], None], scanner: SSEScanner,
                 capture: bool = False) -> None:
        self.steady = False
        """Output flowing, identity known, no capture: ``take`` may count deltas."""
        self.obs = obs
        self.on_first_token = on_first_token
        self.scanner = scanner
        self.capture = capture

    def take(self, chunk: bytes) -> bool:
        """Count ``chunk`` right here if it is exactly one ``*.delta`` event (the hot path)."""
        if not self.steady:
            obs = self.obs
            if not (obs.content_events and obs.response_id is not None and not self.capture):
                return False
            self.steady = True  # all three only ever turn true: decided once per stream
        if not (self.scanner.idle and chunk.endswith(b"\n\n") and b"\r" not in chunk):
            return False
        if chunk.startswith(b"event: "):
            start = chunk.find(b"\n") + 1
            if chunk.find(b"\n", start) != len(chunk) - 2:
                return False
        elif chunk.find(b"\n") == len(chunk) - 2:
            start = 0
        else:
            return False
        if not chunk.startswith(b'data: {"type":"', start):
            return False
        end = chunk.find(b'"', start + 15)
        if chunk[start + 15:end].endswith(b".delta"):
            self.obs.content_events += 1
            return True
        return False

    def take_run(self, chunks: list[bytes]) -> int:
        """``take`` over held chunks at once: how many leading ones it counted (``delta_runs``)."""
        return _count_run(self, delta_runs.responses_deltas, chunks)

    def on_event(self, data: bytes) -> None:
        if data == b"[DONE]":
            return
        if data.startswith(b'{"type":"'):
            end = data.find(b'"', 9)
            etype = data[9:end]
        else:  # keys in another order (a gateway re-serialised it): parse to find the type
            obj = json.loads(data)
            etype = str(obj.get("type", "")).encode() if isinstance(obj, dict) else b""
        obs = self.obs
        if etype.endswith(b".delta"):
            if obs.content_events == 0:
                self.on_first_token()
            obs.content_events += 1
            if self.capture and etype == b"response.output_text.delta":
                obj = json.loads(data)
                if isinstance(obj, dict) and isinstance(obj.get("delta"), str):
                    if obs.output_text is None:
                        obs.output_text = []
                    obs.output_text.append(obj["delta"])
            return
        if etype in _TERMINAL_RESPONSE_TYPES:
            obj = json.loads(data)
            if isinstance(obj, dict):
                read_response_object(obj.get("response"), obs)
            obs.ended = True
            return
        if etype == b"response.output_item.done":
            obs.tool_items().add_event(data)
            return
        if etype == b"error":
            obj = json.loads(data)
            obs.set_error(obj if isinstance(obj, dict) else None)
            obs.ended = True
            return
        if obs.response_id is None and etype in _OPENING_RESPONSE_TYPES:
            obj = json.loads(data)
            if isinstance(obj, dict):
                response = obj.get("response")
                if isinstance(response, dict):
                    _read_identity(response, obs)


    def on_oversized(self, head: bytes, tail: bytes) -> None:
        """An event too big to keep whole (images, a long output): type and identity from its start,
        usage from its end (a Responses object lists ``usage`` after ``output``)."""
        fields = partial.leading_fields(head, into="response")
        etype = fields.get("type")
        etype = etype.encode() if isinstance(etype, str) else b""
        obs = self.obs
        if etype.endswith(b".delta"):
            if obs.content_events == 0:
                self.on_first_token()
            obs.content_events += 1
            return
        if etype == b"response.output_item.done":  # an image tool's item carries the whole image
            obs.tool_items().add_event(head)
            return
        if etype not in _TERMINAL_RESPONSE_TYPES:
            return
        response = fields.get("response")
        if isinstance(response, dict):
            read_response_object({k: v for k, v in response.items() if k != "usage"}, obs)
        usage = partial.last_object(tail, b"usage")
        if usage is not None and "input_tokens" in usage:
            obs.usage = usage_mod.from_responses(usage)
        obs.ended = True


def _read_identity(response: dict[str, Any], obs: Observation) -> None:
    if obs.response_id is None and response.get("id"):
        obs.response_id = str(response["id"])
    if obs.response_model is None and response.get("model"):
        obs.response_model = str(response["model"])
    tier = tier_name(response.get("service_tier"))
    if tier is not None:
        obs.service_tier = tier  # the last object that says wins: a terminal event over the created one


def read_response_object(response: Any, obs: Observation) -> None:
    """A Responses ``response`` object (body of create/retrieve, or a terminal event's payload)."""
    if not isinstance(response, dict):
        return
    _read_identity(response, obs)
    status = response.get("status")
    if isinstance(status, str):
        obs.status = status
    details = response.get("incomplete_details")
    if isinstance(details, dict) and isinstance(details.get("reason"), str):
        obs.incomplete_reason = details["reason"]
    if response.get("usage") is not None:
        obs.usage = usage_mod.from_responses(response.get("usage"))
    output = response.get("output")
    if output:
        obs.tools = tools.from_output(output, obs.tools)
    if status == "failed":
        obs.set_error(response.get("error"))


def _responses_text(response: dict[str, Any]) -> list[str] | None:
    texts = []
    for item in response.get("output") or []:
        if isinstance(item, dict):
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return texts or None


def read_json_body(api: Api, status_code: int, body: bytes, obs: Observation, capture: bool = False) -> None:
    """A complete non-streaming body: success JSON or an error body (output text only when ``capture``)."""
    obj = json.loads(body)
    if not isinstance(obj, dict):
        return
    if status_code >= 400 or obj.get("error"):
        if api == "responses" and status_code < 400 and isinstance(obj.get("status"), str):
            read_response_object(obj, obs)  # a failed response object: its `error` is the failure
            return
        obs.set_error(obj.get("error"))
        return
    if api == "responses":
        read_response_object(obj, obs)
        if capture:
            obs.output_text = _responses_text(obj)
        return
    if api == "chat":
        _read_identity(obj, obs)
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
                    index = choice.get("index", 0)
                    obs.finish_reasons[index if isinstance(index, int) else 0] = choice["finish_reason"]
                if capture and isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    text = choice["message"].get("content")
                    if isinstance(text, str):
                        obs.output_text = [*(obs.output_text or []), text]
    else:  # embeddings: OpenAI's carry no id, others' (Cohere on Azure AI Foundry) do; the model is the served one
        _read_identity(obj, obs)
    obs.usage = usage_mod.from_chat(obj.get("usage"))
    obs.ended = True
