"""The demo's workload: a fixed mix of calls, sync and async, cycled as long as asked.

Every kind of call meter meters appears: Chat Completions and Responses,
streaming and not, embeddings, several deployments and attribution teams, a
stream the caller closes early, a 429 that the SDK retries, and a prompt the
content filter refuses. All go through the real ``openai`` SDK wrapped by
``meter.wrap``, against the emulator over a loopback socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import openai

import meter
from meter.apps.emulator import Emulator

API_VERSION = "2024-10-21"
QUESTION = "Summarise the quarterly report for the search team in three sentences."
SYSTEM = "You are a concise analyst. " * 40  # a long shared prefix: cache hits on the caching deployment


@dataclass(frozen=True)
class Step:
    """One call of the workload: what it is, who pays for it, and how to make it."""

    name: str
    team: str
    run: Callable[[Clients], Any]
    is_async: bool = False


class Clients:
    """The SDK clients the steps use, all metered by the same ``Meter``."""

    def __init__(self, emulator: Emulator, m: meter.Meter) -> None:
        key = emulator.config.api_key
        self.emulator = emulator
        self.azure = meter.wrap(openai.AzureOpenAI(azure_endpoint=emulator.url, api_key=key,
                                                   api_version=API_VERSION, max_retries=2), meter=m)
        self.v1 = meter.wrap(openai.OpenAI(base_url=emulator.url + "/openai/v1/", api_key=key, max_retries=2),
                             meter=m)
        self._meter = m
        self.aio: Any = None
        """The async client of the event loop that is running the async steps."""

    def new_async(self) -> Any:
        """A fresh metered async client (async clients belong to the event loop that uses them)."""
        key = self.emulator.config.api_key
        return meter.wrap(openai.AsyncAzureOpenAI(azure_endpoint=self.emulator.url, api_key=key,
                                                  api_version=API_VERSION, max_retries=2), meter=self._meter)

    def close(self) -> None:
        self.azure.close()
        self.v1.close()


def _messages(text: str) -> Any:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def chat(c: Clients) -> None:
    c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages(QUESTION), max_tokens=60)


def chat_stream(c: Clients) -> None:
    for _ in c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages(QUESTION), stream=True):
        pass


def reasoning_chat_v1(c: Clients) -> None:
    c.v1.chat.completions.create(model="o4-mini", messages=_messages("Plan the migration."),
                                 max_completion_tokens=200)


def responses_cached(c: Clients) -> None:
    c.azure.responses.create(model="gpt-5", instructions=SYSTEM, input="What changed since last week?")


def responses_stream(c: Clients) -> None:
    with c.v1.responses.stream(model="gpt-5", instructions=SYSTEM, input="Draft the release notes.") as stream:
        for _ in stream:
            pass


def embeddings(c: Clients) -> None:
    c.azure.embeddings.create(model="text-embedding-3-small", input=["quarterly report", "release notes"])


async def async_chat_stream(c: Clients) -> None:
    stream = await c.aio.chat.completions.create(model="o4-mini", messages=_messages("Explain the outage."),
                                                 stream=True, max_completion_tokens=200)
    async for _ in stream:
        pass


async def async_responses(c: Clients) -> None:
    await c.aio.responses.create(model="gpt-5", instructions=SYSTEM, input="List the open risks.")


def early_closed_stream(c: Clients) -> None:
    """The caller stops reading after a few chunks and closes the stream."""
    stream = c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages("Tell me a long story."),
                                             stream=True)
    for i, _ in enumerate(stream):
        if i >= 3:
            break
    stream.close()


def throttled_then_retried(c: Clients) -> None:
    """The emulator answers 429 once; the SDK waits retry-after-ms and retries."""
    c.emulator.fail_next(429, deployment="gpt-4o-mini")
    c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages(QUESTION), max_tokens=40)


def content_filtered(c: Clients) -> None:
    """A prompt Azure's content filter refuses: HTTP 400, billed but without usage."""
    with contextlib.suppress(openai.BadRequestError):
        c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages("Tell me about forbidden-topic."))


MIX: tuple[Step, ...] = (
    Step("chat", "search", chat),
    Step("chat stream", "search", chat_stream),
    Step("embeddings", "search", embeddings),
    Step("reasoning chat (v1)", "ads", reasoning_chat_v1),
    Step("async chat stream", "ads", async_chat_stream, is_async=True),
    Step("responses (cached)", "research", responses_cached),
    Step("responses stream", "research", responses_stream),
    Step("async responses", "research", async_responses, is_async=True),
)
ONCE: tuple[Step, ...] = (
    Step("early-closed stream", "search", early_closed_stream),
    Step("429, retried by the SDK", "ads", throttled_then_retried),
    Step("content-filtered prompt", "research", content_filtered),
)


def plan(requests: int) -> list[Step]:
    """``requests`` steps: the special ones once, then the mix, cycled."""
    steps = list(ONCE[:requests])
    i = 0
    while len(steps) < requests:
        steps.append(MIX[i % len(MIX)])
        i += 1
    return steps


def tags(step: Step, label_keys: tuple[str, ...]) -> dict[str, str]:
    """The attribution tags of a step: its team under the first label key; a further key gets the
    step's kind (``chat``, ``responses``, ``embeddings``), so every dashboard variable has values."""
    if not label_keys:
        return {}
    kind = step.name.split()[0]
    return {label_keys[0]: step.team, **{key: kind for key in label_keys[1:]}}


def run(clients: Clients, steps: list[Step], concurrency: int, on_done: Callable[[Step], None],
        label_keys: tuple[str, ...] = ("team",)) -> None:
    """Run the steps: sync ones on ``concurrency`` threads, async ones on an event loop beside them."""
    sync_steps = [s for s in steps if not s.is_async]
    async_steps = [s for s in steps if s.is_async]

    def one(step: Step) -> None:
        with meter.attribute(**tags(step, label_keys)):
            step.run(clients)
        on_done(step)

    async def run_async() -> None:
        clients.aio = clients.new_async()
        gate = asyncio.Semaphore(max(1, concurrency // 2))

        async def one_async(step: Step) -> None:
            async with gate:
                with meter.attribute(**tags(step, label_keys)):
                    await step.run(clients)
            on_done(step)

        await asyncio.gather(*(one_async(s) for s in async_steps))
        await clients.aio.close()

    loop_thread = threading.Thread(target=asyncio.run, args=(run_async(),), name="demo-async")
    loop_thread.start()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in [pool.submit(one, s) for s in sync_steps]:
            future.result()
    loop_thread.join()


def throttled_storm(c: Clients) -> None:
    """A 429 the SDK's retries cannot get past: three 429s in a row on o4-mini (part of a storm)."""
    c.emulator.fail_next(429, count=3, deployment="o4-mini")
    with contextlib.suppress(openai.RateLimitError):
        c.azure.chat.completions.create(model="o4-mini", messages=_messages(QUESTION), max_tokens=40)


STORM = Step("429 storm", "ads", throttled_storm)
EARLY_CLOSE = Step("early-closed stream", "search", early_closed_stream)

PHASES: tuple[tuple[float, str], ...] = (
    (0.20, "steady"), (0.35, "burst"), (0.45, "steady"), (0.57, "429 storm"), (0.67, "steady"),
    (0.78, "early closes"), (1.0, "steady"),
)
"""The shape of ``--seconds``: (end as a share of the run, phase). Steady load is paced; a burst runs
the mix three times over without a pause; a 429 storm and a spike of streams closed early are
what the alert rules are there to catch, so the dashboards show each of them."""


def phase(share: float) -> str:
    return next(name for end, name in PHASES if share < end) if share < 1 else PHASES[-1][1]


def run_for(clients: Clients, seconds: float, concurrency: int, on_done: Callable[[Step], None],
            label_keys: tuple[str, ...] = ("team",)) -> int:
    """Keep load going for ``seconds`` in the phases of ``PHASES`` (so a dashboard has shape); returns the steps."""
    done = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        now = phase(elapsed / seconds)
        batch = list(MIX)
        pause = 0.6
        if now == "burst":
            batch, pause = list(MIX) * 3, 0.0
        elif now == "429 storm":  # one at a time: each storm call meets its own three 429s, nothing else does
            run(clients, [STORM] * 4, 1, on_done, label_keys)
            done += 4
        elif now == "early closes":
            batch = [*MIX, *([EARLY_CLOSE] * 4)]
        run(clients, batch, concurrency * (2 if now == "burst" else 1), on_done, label_keys)
        done += len(batch)
        time.sleep(min(pause, max(0.0, seconds - (time.monotonic() - started))))
    return done
