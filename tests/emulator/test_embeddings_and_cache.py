"""Embeddings, and prompt caching on the cache deployment."""

from __future__ import annotations

import openai
import pytest

from meter.apps.emulator import Emulator

LONG = " ".join(f"word{i}" for i in range(300))


def test_embeddings(emu: Emulator, azure: openai.AzureOpenAI, v1: openai.OpenAI) -> None:
    classic = azure.embeddings.create(model="text-embedding-3-small", input="one two three")
    floats = v1.embeddings.create(model="text-embedding-3-small", input=["one two three", "four"],
                                  encoding_format="float")
    assert len(classic.data[0].embedding) == 8
    assert classic.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)  # base64 == float
    assert classic.usage.prompt_tokens == classic.usage.total_tokens == 3
    assert floats.usage.prompt_tokens == 4 and len(floats.data) == 2
    assert classic.model == "text-embedding-3-small"
    assert emu.usage_log[0]["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_repeated_prompt_is_cached(v1: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": LONG}, {"role": "user", "content": "first question"}]
    cold = v1.chat.completions.create(model="gpt-5", messages=messages)
    messages[1]["content"] = "second question"
    warm = v1.chat.completions.create(model="gpt-5", messages=messages)
    assert cold.usage is not None and warm.usage is not None
    assert cold.usage.prompt_tokens_details is not None and warm.usage.prompt_tokens_details is not None
    assert cold.usage.prompt_tokens_details.cached_tokens == 0
    cached = warm.usage.prompt_tokens_details.cached_tokens
    assert cached == 256 and cached <= warm.usage.prompt_tokens  # whole 128-token blocks of the shared prefix
    response = v1.responses.create(model="gpt-5", input=[{"role": "user", "content": LONG}])
    again = v1.responses.create(model="gpt-5", input=[{"role": "user", "content": LONG}])
    assert response.usage is not None and again.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert again.usage.input_tokens_details.cached_tokens == 256


def test_no_cache_deployment_never_caches(v1: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": LONG}]
    v1.chat.completions.create(model="gpt-4o-mini", messages=messages)
    again = v1.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == 0
