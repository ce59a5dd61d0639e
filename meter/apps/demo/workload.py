"""The demo's workload: a fixed mix of calls, sync and async, cycled as long as asked.

Every kind of call meter meters appears: Chat Completions and Responses,
streaming and not, embeddings, several deployments and attribution teams, a
stream the caller closes early, a 429 that the SDK retries, and a prompt the
content filter refuses; an agent turn that searches the web and runs code (two
calls sharing one code interpreter container), a priority call and a flex call;
and once a run what Azure bills beyond tokens: a transcription, speech, an image
and a small batch (uploaded, created, polled and its output file downloaded).
All go through the real ``openai`` SDK wrapped by ``meter.wrap``, against the
emulator over a loopback socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
    calls: int = 1
    """Metered calls the step makes (an agent turn makes two)."""


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


AGENT_TOOLS: Any = [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}]


def agent_turn(c: Clients) -> None:
    """An agent turn: search the web and compute, then a follow-up in the same code interpreter container
    (two calls, one container session)."""
    first = c.v1.responses.create(model="gpt-5", instructions=SYSTEM, tools=AGENT_TOOLS,
                                  input="Find this quarter's cloud prices and chart the change.")
    c.v1.responses.create(model="gpt-5", previous_response_id=first.id, input="Now per region, as a table.",
                          tools=[{"type": "code_interpreter", "container": {"type": "auto"}}])


def priority_chat(c: Clients) -> None:
    """A latency-sensitive call at the Priority tier (billed at Global Priority rates)."""
    c.azure.chat.completions.create(model="gpt-5", messages=_messages("Answer the pager alert now."),
                                    service_tier="priority")


def flex_responses(c: Clients) -> None:
    """A call that can wait, at the Flex tier (billed at Global Flex rates)."""
    c.v1.responses.create(model="gpt-5.4-mini", input="Tag last week's tickets by product.", service_tier="flex")


SPEECH_SECONDS = 2
AUDIO = bytes(range(256)) * (16_000 * SPEECH_SECONDS // 256)
"""Two seconds of "audio" (the emulator reckons 16 kB a second)."""


def transcription(c: Clients) -> None:
    c.azure.audio.transcriptions.create(model="gpt-4o-transcribe", file=("standup.wav", AUDIO))


def speech(c: Clients) -> None:
    """Speech streamed as events, whose last one carries the token usage."""
    with c.azure.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="Your report is ready.", stream_format="sse") as answer:
        answer.read()


def image(c: Clients) -> None:
    c.azure.images.generate(model="gpt-image-1", prompt="A bar chart of quarterly spend", size="1024x1024",
                            quality="low")


BATCH_QUESTIONS = ("Classify: refund request", "Classify: login problem", "Classify: feature idea")


def batch(c: Clients) -> None:
    """A small batch: upload the requests, create the job, poll it, download the output file (the one
    call of the four that is billed, and metered)."""
    lines = "".join(json.dumps({"custom_id": f"ticket-{i}", "method": "POST", "url": "/chat/completions",
                                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": q}]}}) + "\n"
                    for i, q in enumerate(BATCH_QUESTIONS))
    upload = c.v1.files.create(file=("tickets.jsonl", lines.encode()), purpose="batch")
    job = c.v1.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 10
    while job.status not in ("completed", "failed", "expired", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.02)
        job = c.v1.batches.retrieve(job.id)
    if job.output_file_id is not None:
        c.v1.files.content(job.output_file_id).read()


def early_closed_stream(c: Clients) -> None:
    """The caller stops reading after a few chunks and closes the stream."""
    stream = c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages("Tell me a long story."),
                                             stream=True)
    for i, _ in enumerate(stream):
        if i >= 3:
            break
    stream.close()


SANDBOX = {"feature": "sandbox"}
"""The tag of the calls the demo's hard budget covers (``sandbox-hard``)."""


def over_a_hard_budget(c: Clients) -> None:
    """Three calls under the demo's hard budget (``sandbox-hard``, 0.0002 USD a day): the first one's worst case
    fits, then what it cost and the next worst case would pass the limit, so meter refuses the next two with
    its own 429 (``budget_exceeded``): never sent, and not retried by the SDK."""
    with meter.attribute(**SANDBOX):
        for _ in range(3):
            with contextlib.suppress(openai.RateLimitError):
                c.azure.chat.completions.create(model="gpt-4o-mini", messages=_messages(QUESTION), max_tokens=200)


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
    Step("agent turn (web search, code)", "research", agent_turn, calls=2),
    Step("priority chat", "ads", priority_chat),
    Step("flex responses", "search", flex_responses),
)
ONCE: tuple[Step, ...] = (
    Step("early-closed stream", "search", early_closed_stream),
    Step("429, retried by the SDK", "ads", throttled_then_retried),
    Step("content-filtered prompt", "research", content_filtered),
    Step("over a hard budget", "search", over_a_hard_budget, calls=3),
)
BEYOND_TOKENS: tuple[Step, ...] = (
    Step("transcription", "search", transcription),
    Step("speech", "ads", speech),
    Step("image", "ads", image),
    Step("batch", "research", batch),
)
"""Once a run: the calls Azure bills by audio, characters, images and Batch lines."""


def plan(requests: int) -> list[Step]:
    """Steps making ``requests`` calls: the special ones once, then the mix, cycled (a step that makes two
    calls counts two; the last may go one over)."""
    steps = []
    calls = 0
    for step in ONCE:
        if calls >= requests:
            break
        steps.append(step)
        calls += step.calls
    for step in BEYOND_TOKENS:
        if calls >= requests:
            break
        steps.append(step)
        calls += step.calls
    i = 0
    while calls < requests:
        step = MIX[i % len(MIX)]
        steps.append(step)
        calls += step.calls
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
    """Keep load going for ``seconds`` in the phases of ``PHASES`` (so a dashboard has shape); returns the calls."""
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
        done += sum(step.calls for step in batch)
        time.sleep(min(pause, max(0.0, seconds - (time.monotonic() - started))))
    return done
