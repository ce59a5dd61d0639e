"""What each operation answers once the request is known to be well-formed.

Order of checks follows the service: the deployment is charged against its
quota first (so even errors carry rate-limit headers), then injected faults
and throttling, then parameter validation, then the content filter, and only
then is the prompt cache consulted, so a refused or throttled request never
warms the cache for its own retry.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import math
import time
from typing import Any

from starlette.responses import Response

from meter.apps.emulator import embeddings, errors, forms, media
from meter.apps.emulator.chat import ChatAnswer
from meter.apps.emulator.config import Deployment, EmulatorConfig
from meter.apps.emulator.exchange import Exchange
from meter.apps.emulator.generation import Generation, plan
from meter.apps.emulator.prompt import (
    Tokens,
    chat_prompt,
    continued,
    embedding_inputs,
    mentions,
    responses_prompt,
    text_of,
)
from meter.apps.emulator.responses import ResponseAnswer, event_frames
from meter.apps.emulator.sse import data_frame, event_frame, generation_time, paced
from meter.apps.emulator.state import EmulatorState
from meter.apps.emulator.store import StoredResponse
from meter.apps.emulator.tools import item_id, requested_tier, served_tier, tool_calls
from meter.apps.emulator.versions import accepts_stream_options

FORBIDDEN = "forbidden-topic"


class Handlers:
    """The create operations of chat, Responses and embeddings."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self.config = config
        self.state = state

    def _gate(self, ex: Exchange, deployment: Deployment, tokens: int) -> Response | None:
        """Charge the quota; answer an injected fault or a throttle instead, if due."""
        ex.quota = self.state.rates.charge(deployment, tokens)
        fault = self.state.faults.take(deployment.name)
        if fault is not None:
            return ex.error(errors.injected(fault, ex.api, ex.api_version))
        if self.config.enforce_limits and ex.quota.exceeded:
            wait_s = max(1, math.ceil(ex.quota.reset_s))
            return ex.error(errors.rate_limited(ex.api, ex.api_version, wait_s), retry_after_ms=wait_s * 1000)
        return None

    def _cached(self, deployment: Deployment, prompt: Tokens, generation: Generation) -> Generation:
        if not deployment.cache:
            return generation
        cached = self.state.cache.lookup(deployment.name, prompt, deployment.cache_block)
        return dataclasses.replace(generation, cached_tokens=min(cached, generation.prompt_tokens))

    async def _wait_for(self, generation: Generation) -> None:
        delay = generation_time(len(generation.deltas), self.config.ttft_s, self.config.tokens_per_s)
        if delay > 0:
            await asyncio.sleep(delay)

    async def chat(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        ex.stream = body.get("stream") is True
        prompt = chat_prompt(body)
        limit = _first_int(body, "max_completion_tokens", "max_tokens")
        generation = plan(deployment, prompt, limit)
        refused = self._gate(ex, deployment, generation.total_tokens)
        if refused is not None:
            return refused
        if deployment.reasoning and body.get("max_tokens") is not None:
            return ex.error(errors.invalid_request(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter"))
        options = body.get("stream_options")
        if options is not None and not accepts_stream_options(None if ex.v1 else ex.api_version):
            return ex.error(errors.unrecognized_argument("stream_options"))
        tier, valid = requested_tier(body)
        if not valid:
            return ex.error(errors.invalid_tier(tier))
        if mentions(prompt, FORBIDDEN):
            billed = {"completion_tokens": 0, "prompt_tokens": len(prompt), "total_tokens": len(prompt)}
            return ex.error(errors.content_filter("chat"), billed=billed)
        options = options if isinstance(options, dict) else {}
        obfuscate = options.get("include_obfuscation") is not False
        ex.service_tier = served_tier(tier, deployment, ex.quota)
        answer = ChatAnswer(deployment.model, self._cached(deployment, prompt, generation), obfuscate,
                            ex.service_tier if tier is not None else None)
        if ex.stream:
            include_usage = options.get("include_usage") is True
            frames = answer.frames(include_usage)
            return ex.sse(paced(frames, self.config.ttft_s, self.config.tokens_per_s), answer.usage())
        await self._wait_for(answer.generation)
        return ex.json(answer.body(), answer.usage())

    async def responses(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        ex.stream = body.get("stream") is True
        prompt = responses_prompt(body)
        previous_id = body.get("previous_response_id")
        previous = self.state.store.get(previous_id) if isinstance(previous_id, str) else None
        if previous is not None:
            prompt = continued(previous.prompt, previous.reply, prompt)
        tools = tool_calls(body, query_of(body), previous.container_id if previous is not None else None)
        for tool in tools:  # what the tools found is input to the model
            prompt = (*prompt, *tool.context_tokens)
        generation = plan(deployment, prompt, _first_int(body, "max_output_tokens"))
        refused = self._gate(ex, deployment, generation.total_tokens)
        if refused is not None:
            return refused
        if isinstance(previous_id, str) and previous is None:
            return ex.error(errors.previous_response_not_found(previous_id))
        tier, valid = requested_tier(body)
        if not valid:
            return ex.error(errors.invalid_tier(tier))
        if mentions(prompt, FORBIDDEN):
            billed = {"input_tokens": len(prompt), "output_tokens": 0, "total_tokens": len(prompt)}
            return ex.error(errors.content_filter("responses"), billed=billed)
        ex.service_tier = served_tier(tier, deployment, ex.quota)
        ex.tools = self.state.containers.billed(tools) or None
        answer = ResponseAnswer(deployment.name, deployment.reasoning, self._cached(deployment, prompt, generation),
                                body, tools, ex.service_tier)
        store = body.get("store") is not False
        text = answer.generation.text
        container = next((t.container_id for t in tools if t.container_id), None)
        if container is None and previous is not None:
            container = previous.container_id
        if ex.stream:
            events = answer.events()
            if store:
                self.state.store.put(answer.id, StoredResponse(deployment, events[-1]["response"], tuple(events),
                                                               prompt, text, container))
            frames = event_frames(events)
            return ex.sse(paced(frames, self.config.ttft_s, self.config.tokens_per_s), answer.usage())
        response = answer.response(answer.final_status)
        if store:
            self.state.store.put(answer.id, StoredResponse(deployment, response, None, prompt, text, container))
        await self._wait_for(answer.generation)
        return ex.json(response, answer.usage())

    async def embeddings(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        inputs = embedding_inputs(body)
        tokens = sum(max(1, len(text.split())) for text in inputs)
        refused = self._gate(ex, deployment, tokens)
        if refused is not None:
            return refused
        encoding = body.get("encoding_format") or "float"
        answer = embeddings.body(deployment.model, inputs, tokens, str(encoding))
        return ex.json(answer, answer["usage"])


def query_of(body: dict[str, Any]) -> str:
    """What the user asked last (a tool call's query): the input text, or its last message's text."""
    value = body.get("input")
    if isinstance(value, list):
        texts = [item if isinstance(item, str) else text_of(item.get("content")) if isinstance(item, dict) else ""
                 for item in value]
        value = next((t for t in reversed(texts) if t), "")
    return value.strip() if isinstance(value, str) and value.strip() else "the question"


def _first_int(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class MediaHandlers(Handlers):
    """Audio, images and compaction (``meter.apps.emulator.media``), after the same gate as the rest."""

    async def transcriptions(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        audio = body.get("file")
        prompt = str(body.get("prompt") or "")
        if not isinstance(audio, bytes) or not audio:
            return ex.error(errors.invalid_request("You must provide a file.", "file"))
        if len(audio) > forms.AUDIO_LIMIT:
            return ex.error(errors.invalid_request("Maximum content size limit (26214400) exceeded.", "file"))
        generation, seconds = media.transcript(deployment, audio, prompt)
        usage = media.transcription_usage(deployment, generation, seconds, prompt)
        refused = self._gate(ex, deployment, usage.get("total_tokens", 0))
        if refused is not None:
            return refused
        fmt = str(body.get("response_format") or "json")
        ex.stream = str(body.get("stream", "")).lower() == "true"
        if media.is_duration_model(deployment) and ex.stream:
            return ex.error(errors.invalid_request(f"Streaming is not supported for {deployment.model}.", "stream"))
        if fmt not in ("json", "text", "srt", "vtt", "verbose_json") or (
                fmt in ("verbose_json", "srt", "vtt") and not media.is_duration_model(deployment)):
            return ex.error(errors.invalid_request(
                f"response_format '{fmt}' is not compatible with model '{deployment.model}'.", "response_format"))
        if ex.stream:
            frames = [data_frame(e, token=e["type"].endswith(".delta"))
                      for e in media.transcription_events(generation, usage)]
            return ex.sse(paced(frames, self.config.ttft_s, self.config.tokens_per_s), usage)
        await self._wait_for(generation)
        if fmt in ("text", "srt", "vtt"):
            return ex.binary((generation.text + "\n").encode(), "text/plain; charset=utf-8", usage)
        translate = ex.api == "translations"
        return ex.json(media.transcription_body(deployment, generation, seconds, usage, fmt, translate), usage)

    translations = transcriptions

    async def speech(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        text, voice = body.get("input"), body.get("voice")
        if not isinstance(text, str) or not text:
            return ex.error(errors.invalid_request("Missing required parameter: 'input'.", "input",
                                                   "missing_required_parameter"))
        if len(text) > 4096:
            return ex.error(errors.invalid_request("'input' is too long: at most 4096 characters.", "input"))
        if not isinstance(voice, str) or not voice:
            return ex.error(errors.invalid_request("Missing required parameter: 'voice'.", "voice",
                                                   "missing_required_parameter"))
        fmt = str(body.get("response_format") or "mp3")
        audio, media_type, seconds = media.speech_audio(text, fmt)
        usage = media.speech_usage(deployment, text, str(body.get("instructions") or ""), seconds)
        refused = self._gate(ex, deployment, usage.get("total_tokens", len(text)))
        if refused is not None:
            return refused
        if body.get("stream_format") == "sse":
            if media.is_character_model(deployment):
                return ex.error(errors.invalid_request(
                    f"stream_format 'sse' is not supported for {deployment.model}.", "stream_format"))
            ex.stream = True
            frames = [data_frame(e, token=e["type"].endswith(".delta")) for e in media.speech_events(audio, usage)]
            frames.append(data_frame("[DONE]"))
            return ex.sse(paced(frames, self.config.ttft_s, self.config.tokens_per_s), usage)
        return ex.binary(audio, media_type, usage)

    async def images(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return ex.error(errors.invalid_request("Missing required parameter: 'prompt'.", "prompt",
                                                   "missing_required_parameter"))
        edit = ex.operation == "edit"
        inputs = [v for k, v in body.items() if k.startswith("image") and isinstance(v, bytes)]
        n = _int_of(body.get("n"), 1)
        dalle = deployment.model.startswith("dall-e")
        size = str(body.get("size") or ("1024x1024" if dalle else "auto"))
        quality = str(body.get("quality") or ("standard" if dalle else "auto"))
        if dalle and (n != 1 or edit):
            what = "n must be 1" if n != 1 else "image edits are not supported"
            return ex.error(errors.invalid_request(f"For {deployment.model}, {what}.", "n" if n != 1 else None))
        if edit and not inputs:
            return ex.error(errors.invalid_request("You must provide an image.", "image"))
        usage = media.image_usage(prompt, n, size, quality, len(inputs))
        refused = self._gate(ex, deployment, 0 if dalle else usage["total_tokens"])
        if refused is not None:
            return refused
        if mentions(tuple(prompt.split()), FORBIDDEN):
            return ex.error(errors.content_filter("images"))
        if dalle:
            billed = {"type": "images", "images": 1, "size": size, "quality": quality}
            return ex.json(media.dalle_body(prompt, str(body.get("response_format") or "url"), ex.request_id), billed)
        fmt = str(body.get("output_format") or "png")
        ex.stream = body.get("stream") is True or str(body.get("stream", "")).lower() == "true"
        if ex.stream:
            events = media.gpt_image_events(n, size, quality, fmt, usage, _int_of(body.get("partial_images"), 0), edit)
            frames = [event_frame(e, token=True) for e in events]
            return ex.sse(paced(frames, self.config.ttft_s, 0.0), usage)
        return ex.json(media.gpt_image_body(n, size, quality, fmt, usage), usage)

    async def compact(self, ex: Exchange, body: dict[str, Any], deployment: Deployment) -> Response:
        """``POST responses/compact``: the conversation folded into one opaque item, billed as tokens."""
        prompt = responses_prompt(body)
        previous_id = body.get("previous_response_id")
        previous = self.state.store.get(previous_id) if isinstance(previous_id, str) else None
        if previous is not None:
            prompt = continued(previous.prompt, previous.reply, prompt)
        output = max(16, len(prompt) // 3)
        usage: dict[str, Any] = {"input_tokens": len(prompt), "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": len(prompt) + output}
        refused = self._gate(ex, deployment, usage["total_tokens"])
        if refused is not None:
            return refused
        if isinstance(previous_id, str) and previous is None:
            return ex.error(errors.previous_response_not_found(previous_id))
        return ex.json(compaction_body(body, usage), usage)


def compaction_body(body: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """A ``response.compaction``: the user's messages kept, the rest one ``compaction`` item."""
    kept = []
    items = body.get("input")
    messages = [{"role": "user", "content": items}] if isinstance(items, str) else items
    if not isinstance(messages, list):
        messages = []
    for item in messages:
        if isinstance(item, dict) and item.get("role") == "user":
            kept.append({"id": item_id("msg_"), "type": "message", "status": "completed",
                         "content": [{"type": "input_text", "text": text_of(item.get("content"))}], "role": "user"})
    secret = base64.b64encode(hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest())
    kept.append({"id": item_id("cmp_"), "type": "compaction", "encrypted_content": "gAAAAA" + secret.decode()})
    return {"id": item_id("resp_"), "object": "response.compaction", "created_at": int(time.time()), "output": kept,
            "usage": usage}


def _int_of(value: Any, default: int) -> int:
    """An int from a JSON number or a form field's text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default
