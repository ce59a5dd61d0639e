"""One emulator per test module (starting uvicorn costs little, but adds up), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from meter.apps.emulator import Emulator
from tests.support.emulator_fixtures import API_KEY, API_VERSION, emu, fresh_emulator_log

__all__ = ["API_KEY", "API_VERSION", "emu", "fresh_emulator_log"]


@pytest.fixture
def azure(emu: Emulator) -> Iterator[openai.AzureOpenAI]:
    client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION, max_retries=0)
    with client:
        yield client


@pytest.fixture
def v1(emu: Emulator) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=emu.url + "/openai/v1/", api_key=API_KEY, max_retries=0)
    with client:
        yield client


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of every frame of an SSE body."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        frames.append((name, "\n".join(data)))
    return frames
