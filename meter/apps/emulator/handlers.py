"""What each operation answers once the request is known to be well-formed.

Order of checks follows the service: the deployment is charged against its
quota first (so even errors carry rate-limit headers), then injected faults
and throttling, then parameter validation, then the content filter, and only
then is the prompt cache consulted, so a refused or throttled request never
warms the cache for its own retry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any

from starlette.responses import Response

from meter.apps.emulator import embeddings, errors
from meter.apps.emulator.chat import ChatAnswer
from meter.apps.emulator.config import Deployment, EmulatorConfig
from meter.apps.emulator.exchange import Exchange
from meter.apps.emulator.generation import Generation, plan
from meter.apps.emulator.prompt import Tokens, chat_prompt, continued, embedding_inputs, mentions, responses_prompt
from meter.apps.emulator.responses import ResponseAnswer, event_frames
from meter.apps.emulator.sse import generation_time, paced
from meter.apps.emulator.state import EmulatorState
from meter.apps.emulator.store import StoredResponse
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
        if mentions(prompt, FORBIDDEN):
            billed = {"completion_tokens": 0, "prompt_tokens": len(prompt), "total_tokens": len(prompt)}
            return ex.error(errors.content_filter("chat"), billed=billed)
        options = options if isinstance(options, dict) else {}
        obfuscate = options.get("include_obfuscation") is not False
        answer = ChatAnswer(deployment.model, self._cached(deployment, prompt, generation), obfuscate)
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
        generation = plan(deployment, prompt, _first_int(body, "max_output_tokens"))
        refused = self._gate(ex, deployment, generation.total_tokens)
        if refused is not None:
            return refused
        if isinstance(previous_id, str) and previous is None:
            return ex.error(errors.previous_response_not_found(previous_id))
        if mentions(prompt, FORBIDDEN):
            billed = {"input_tokens": len(prompt), "output_tokens": 0, "total_tokens": len(prompt)}
            return ex.error(errors.content_filter("responses"), billed=billed)
        answer = ResponseAnswer(deployment.name, deployment.reasoning, self._cached(deployment, prompt, generation),
                                body)
        store = body.get("store") is not False
        text = answer.generation.text
        if ex.stream:
            events = answer.events()
            if store:
                self.state.store.put(answer.id, StoredResponse(deployment, events[-1]["response"], tuple(events),
                                                               prompt, text))
            frames = event_frames(events)
            return ex.sse(paced(frames, self.config.ttft_s, self.config.tokens_per_s), answer.usage())
        response = answer.response(answer.final_status)
        if store:
            self.state.store.put(answer.id, StoredResponse(deployment, response, None, prompt, text))
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


def _first_int(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
