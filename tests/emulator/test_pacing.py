"""Latency, time to first token and tokens per second, measured by a real client (loose bounds)."""

from __future__ import annotations

import time

import openai

from meter.apps.emulator import Emulator, EmulatorConfig
from tests.emulator.conftest import API_KEY, API_VERSION

MESSAGES = [{"role": "user", "content": "Pace yourself"}]


def test_ttft_and_tokens_per_second() -> None:
    config = EmulatorConfig(latency_s=0.1, ttft_s=0.2, tokens_per_s=100.0)
    with Emulator(config) as emu:
        client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION)
        started = time.perf_counter()
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=21, stream=True)
        arrivals = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter() - started)
        assert len(arrivals) == 21
        assert 0.28 <= arrivals[0] < 1.0  # latency + ttft
        assert 0.16 <= arrivals[-1] - arrivals[0] < 1.0  # 20 gaps of 10 ms: deltas really arrive one by one

        started = time.perf_counter()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=21)
        assert 0.38 <= time.perf_counter() - started < 1.5  # non-stream waits out the whole generation
