"""Chat completions in Azure's shapes: the JSON body and the SSE chunk sequence.

Keys are written in alphabetical order, as Azure sends them (the one exception,
``prompt_filter_results`` entries, is Azure's too). The stream opens with the
prompt-annotation chunk (empty ``choices``, empty ids), then a role chunk, one
chunk per token, the finish chunk, and the usage chunk only when the request
asked for it with ``stream_options.include_usage``. A request that names a
``service_tier`` gets the tier that served it back, in the body and on every
chunk after the annotation chunk (as the service echoes it).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from meter.apps.emulator.filters import content_filter_results, prompt_filter_results
from meter.apps.emulator.generation import Generation
from meter.apps.emulator.sse import Frame, data_frame


class ChatAnswer:
    """One chat completion being answered: ids shared by the body or all its chunks."""

    def __init__(self, model: str, generation: Generation, obfuscate: bool = True,
                 service_tier: str | None = None) -> None:
        self.model = model
        self.generation = generation
        self.obfuscate = obfuscate
        self.service_tier = service_tier
        """The tier that served the call, echoed when the request named one (``None``: not echoed)."""
        self.id = "chatcmpl-" + uuid.uuid4().hex[:29]
        self.created = int(time.time())
        self.fingerprint = "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]

    @property
    def finish_reason(self) -> str:
        return "length" if self.generation.truncated else "stop"

    def usage(self) -> dict[str, Any]:
        g = self.generation
        return {
            "completion_tokens": g.output_tokens,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": g.reasoning_tokens,
                "rejected_prediction_tokens": 0,
            },
            "prompt_tokens": g.prompt_tokens,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": g.cached_tokens},
            "total_tokens": g.total_tokens,
        }

    def body(self) -> dict[str, Any]:
        """The non-streaming ``chat.completion`` object."""
        text = self.generation.text
        message: dict[str, Any] = {"annotations": [], "content": text, "refusal": None, "role": "assistant"}
        choice = {
            "content_filter_results": content_filter_results(prompt=False),
            "finish_reason": self.finish_reason,
            "index": 0,
            "logprobs": None,
            "message": message,
        }
        body = {
            "choices": [choice],
            "created": self.created,
            "id": self.id,
            "model": self.model,
            "object": "chat.completion",
            "prompt_filter_results": prompt_filter_results(),
        }
        if self.service_tier is not None:
            body["service_tier"] = self.service_tier
        body["system_fingerprint"] = self.fingerprint
        body["usage"] = self.usage()
        return body

    def frames(self, include_usage: bool) -> list[Frame]:
        """Every SSE frame of the streamed answer, ``[DONE]`` included."""
        frames = [data_frame(self._annotation_chunk())]
        frames.append(data_frame(self._chunk([self._choice({"content": "", "refusal": None, "role": "assistant"}, {})],
                                             include_usage)))
        for delta in self.generation.deltas:
            choice = self._choice({"content": delta}, content_filter_results(prompt=False))
            frames.append(data_frame(self._chunk([choice], include_usage), token=True))
        frames.append(data_frame(self._chunk([self._choice({}, {}, self.finish_reason)], include_usage)))
        if include_usage:
            frames.append(data_frame(self._chunk([], include_usage, usage=self.usage())))
        frames.append(data_frame("[DONE]"))
        return frames

    @staticmethod
    def _annotation_chunk() -> dict[str, Any]:
        return {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": prompt_filter_results(),
        }

    @staticmethod
    def _choice(delta: dict[str, Any], filters: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "content_filter_results": filters,
            "delta": delta,
            "finish_reason": finish,
            "index": 0,
            "logprobs": None,
        }

    def _chunk(self, choices: list[dict[str, Any]], include_usage: bool,
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
        """One ``chat.completion.chunk``: ``obfuscation`` unless turned off, ``usage`` only if asked for."""
        chunk: dict[str, Any] = {"choices": choices, "created": self.created, "id": self.id, "model": self.model}
        if self.obfuscate:
            chunk["obfuscation"] = _obfuscation(choices)
        chunk["object"] = "chat.completion.chunk"
        if self.service_tier is not None:
            chunk["service_tier"] = self.service_tier
        chunk["system_fingerprint"] = self.fingerprint
        if include_usage:
            chunk["usage"] = usage
        return chunk


def _obfuscation(choices: list[dict[str, Any]]) -> str:
    """Padding that evens out chunk sizes (Azure 2026 sends one on every chunk)."""
    content = choices[0]["delta"].get("content", "") if choices else ""
    return "x" * max(1, 16 - len(content))
