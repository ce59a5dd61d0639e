"""The server around the wire format: async clients, abandoned streams, throttling, ASGI use, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import openai
import pytest

from meter.apps.emulator import Deployment, Emulator, EmulatorConfig, create_app
from tests.emulator.conftest import API_KEY, API_VERSION

MESSAGES = [{"role": "user", "content": "Lifecycle"}]


async def test_async_client_streams(emu: Emulator) -> None:
    client = openai.AsyncAzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION)
    async with client:
        stream = await client.chat.completions.create(model="o4-mini", messages=MESSAGES, stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        response = await client.responses.create(model="gpt-4o-mini", input="async")
    assert chunks[-1].usage is not None and response.status == "completed"


def test_abandoned_stream_is_billed_and_server_survives() -> None:
    with Emulator(EmulatorConfig(tokens_per_s=200.0)) as emu:
        client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        next(iter(stream))
        stream.close()
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.choices[0].finish_reason == "stop"
        assert [e["status"] for e in emu.usage_log] == [200, 200]
        assert emu.usage_log[0]["usage"] is not None  # Azure bills what it generated


def test_enforced_limits_throttle() -> None:
    tight = Deployment("tight", "gpt-4o-mini-2024-07-18", rpm_limit=2)
    with Emulator(EmulatorConfig(deployments=(tight,), enforce_limits=True)) as emu:
        client = openai.AzureOpenAI(azure_endpoint=emu.url, api_key=API_KEY, api_version=API_VERSION, max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model="tight", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="tight", messages=MESSAGES)
        assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(info.value.response.headers["retry-after"]) >= 1


async def test_create_app_runs_under_any_asgi_server() -> None:
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig(api_key="k")))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post("/openai/v1/embeddings", headers={"api-key": "k"},
                                     json={"model": "text-embedding-3-small", "input": "hi"})
    assert response.status_code == 200 and response.json()["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


def test_cli_prints_url_and_key() -> None:
    process = subprocess.Popen([sys.executable, "-m", "meter.apps.emulator", "--port", "0", "--api-key", "cli-key"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)\s+api-key: cli-key", line)
        assert match, line
        client = openai.OpenAI(base_url=match.group(1) + "/openai/v1/", api_key="cli-key", max_retries=0)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).usage is not None
    finally:
        process.terminate()
        process.communicate(timeout=10)
