"""Readers of the endpoints outside chat / Responses / embeddings: audio and images.

``/audio/transcriptions`` and ``/audio/translations`` answer JSON whose ``usage`` is either token
usage (``{"type": "tokens", "input_tokens": 17, "input_token_details": {"audio_tokens": 17}, ...}``,
the gpt-4o-transcribe family) or a duration (``{"type": "duration", "seconds": 2}``, whisper), or
text, SRT or VTT with no usage at all; their streams end with ``transcript.text.done`` carrying the
usage. ``/audio/speech`` answers binary audio (no usage: never read), or with ``stream_format: sse``
an event stream whose ``speech.audio.done`` carries the usage. ``/images/generations`` and
``/images/edits`` answer JSON with gpt-image-1's token usage and one ``data`` item per image, or a
stream of ``image_*.partial_image`` events ending in ``image_*.completed`` with the usage.

Usage objects here use Responses names (``input_tokens``, ``input_tokens_details``, ...), except
the transcription's ``input_token_details`` (singular ``token``), read as the same. A usage that is
there but cannot be read as counts (negative, absurd, a string; seconds that are not a duration)
is unknown, never made up: what else the body says is kept, and ``UnreadableUsage`` is raised at the
end so the caller's guard counts one ``parse`` fault. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from meter.core import partial
from meter.core import usage as usage_mod
from meter.core.observe import Observation
from meter.core.record import Api, Usage
from meter.core.sse import SSEScanner

MAX_AUDIO_SECONDS = 10**7
"""More seconds of audio than this (about 116 days) in one call is not a duration."""

_END_SUFFIXES = (b".done", b".completed")
_DELTA_SUFFIXES = (b".delta", b".partial_image")


class UnreadableUsage(ValueError):
    """A usage the service sent could not be read as counts: it stays unknown (one ``parse`` fault)."""


def is_json(content_type: str) -> bool:
    """A JSON body (``application/json``, ``application/problem+json``): anything else is not read."""
    return content_type == "application/json" or content_type.endswith("+json")


def media_usage(usage: Any) -> Usage | None:
    """Token usage of an audio or images answer, ``None`` when it is none (or not counts)."""
    if type(usage) is not dict or usage.get("type") == "duration":
        return None
    if "input_tokens_details" not in usage and "input_token_details" in usage:
        usage = {**usage, "input_tokens_details": usage["input_token_details"]}
    return usage_mod.from_responses(usage)


def seconds_of(value: Any) -> float | None:
    """A duration in seconds, or ``None`` when the value is not one (a string, negative, absurd, NaN)."""
    if type(value) is not int and type(value) is not float:  # bool is not a duration
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_AUDIO_SECONDS:
        return None
    return seconds


def _read_usage(usage: Any, obs: Observation) -> None:
    """Token usage or a duration into ``obs``; raises ``UnreadableUsage`` (after the rest is read)."""
    if usage is None:
        return
    if type(usage) is dict and usage.get("type") == "duration":
        seconds = seconds_of(usage.get("seconds"))
        if seconds is None:
            raise UnreadableUsage(f"audio usage seconds {usage.get('seconds')!r:.40} are not a duration")
        obs.audio_seconds = seconds
        return
    read = media_usage(usage)
    if read is None:
        raise UnreadableUsage(f"usage {json.dumps(usage)[:200]} is not token counts")
    obs.usage = read


def read_body(api: Api, obj: dict[str, Any], obs: Observation) -> None:
    """A complete JSON success body of an audio or images call."""
    if isinstance(obj.get("id"), str) and obj["id"] and obs.response_id is None:
        obs.response_id = obj["id"]
    if isinstance(obj.get("model"), str) and obj["model"] and obs.response_model is None:
        obs.response_model = obj["model"]
    data = obj.get("data")
    if api == "images" and isinstance(data, list):
        obs.images = len(data)
    obs.ended = True
    usage = obj.get("usage")
    if usage is None and api in ("transcriptions", "translations"):
        # whisper's verbose_json says how long the audio was, without a usage object
        obs.audio_seconds = seconds_of(obj.get("duration"))
    _read_usage(usage, obs)


def read_json_body(api: Api, status_code: int, body: bytes, obs: Observation, capture: bool = False) -> None:
    """A complete non-streaming JSON body (success or error) of an audio or images call."""
    obj = json.loads(body)
    if not isinstance(obj, dict):
        return
    if status_code >= 400 or obj.get("error"):
        obs.set_error(obj.get("error"))
        return
    read_body(api, obj, obs)


def _event_type(data: bytes) -> bytes:
    if data.startswith(b'{"type":"'):
        return data[9:data.find(b'"', 9)]
    obj = json.loads(data)  # keys in another order: parse to find the type
    etype = obj.get("type") if isinstance(obj, dict) else None
    return etype.encode() if isinstance(etype, str) else b""


class MediaStreamObserver:
    """Audio and images SSE: deltas are counted, never parsed; the ``*.done`` / ``*.completed`` event
    carries the usage (the last one that has a usage wins); ``error`` events fail the call."""

    __slots__ = ("obs", "on_first_token", "scanner")

    def __init__(self, obs: Observation, on_first_token: Callable[[], None], scanner: SSEScanner) -> None:
        self.obs = obs
        self.on_first_token = on_first_token
        self.scanner = scanner

    def take(self, chunk: bytes) -> bool:
        """No one-chunk fast path: these streams are short (a few large audio or image events)."""
        return False

    def take_run(self, chunks: list[bytes]) -> int:
        """Nothing is held (``take`` never counts), so no run either."""
        return 0

    def _delta(self) -> None:
        obs = self.obs
        if obs.content_events == 0:
            self.on_first_token()
        obs.content_events += 1

    def _ended(self, etype: bytes) -> None:
        obs = self.obs
        obs.ended = True
        if etype.startswith(b"image_") and etype.endswith(b".completed"):
            obs.images = (obs.images or 0) + 1

    def on_event(self, data: bytes) -> None:
        obs = self.obs
        if data == b"[DONE]":
            obs.ended = True
            return
        etype = _event_type(data)
        if etype.endswith(_DELTA_SUFFIXES):
            self._delta()
            return
        if etype == b"error" or etype.endswith(b".failed"):
            obj = json.loads(data)
            error = obj.get("error") if isinstance(obj, dict) else None
            obs.set_error(error if isinstance(error, dict) else obj)
            obs.ended = True
            return
        if etype.endswith(_END_SUFFIXES):
            obj = json.loads(data)
            self._ended(etype)
            if isinstance(obj, dict):
                _read_usage(obj.get("usage"), obs)

    def on_oversized(self, head: bytes, tail: bytes) -> None:
        """An event too big to keep whole (a final image): its type from the start, usage from the end."""
        etype = partial.leading_fields(head).get("type")
        etype = etype.encode() if isinstance(etype, str) else b""
        if etype.endswith(_DELTA_SUFFIXES):
            self._delta()
        elif etype.endswith(_END_SUFFIXES):
            self._ended(etype)
            _read_usage(partial.last_object(tail, b"usage"), self.obs)
