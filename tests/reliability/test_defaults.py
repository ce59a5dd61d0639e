"""Property 1: the documented defaults, as a new user meets them.

Every documented way to meter a client without ``meter=`` runs in a fresh
process (nothing built by a fixture, no default meter set by another test),
through the real SDK or client, against the emulator over a real socket, with a
timeout: a hang is a failure. Each snippet subscribes to ``meter.default_meter()``
and prints what it recorded. The first of these hung forever before the default
meter's lock was split from the price book's.
"""

from __future__ import annotations

import json

import pytest

from meter.apps.emulator import Emulator
from tests.reliability.fresh import run_fresh
from tests.support.emulator_fixtures import API_KEY, API_VERSION

PRELUDE = f"""
import json, os, sys
import meter
URL = os.environ["EMU_URL"]
KEY = "{API_KEY}"
VERSION = "{API_VERSION}"
records = []
def report():
    assert meter.default_meter().flush()  # the records come on the metering worker, a moment after the calls
    print(json.dumps([{{"api": r.api, "stream": r.stream, "outcome": r.outcome,
                        "usage": r.usage is not None, "source": r.usage_source,
                        "cost": None if r.cost is None or r.cost.total is None else str(r.cost.total)}}
                      for r in records]))
"""

SNIPPETS = {
    "default_meter": """
        meter.default_meter()
        print("[]")
    """,
    "wrap_azure_openai": """
        import openai
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=URL, api_key=KEY, api_version=VERSION))
        meter.default_meter().subscribe(records.append)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        report()
    """,
    "wrap_azure_openai_stream": """
        import openai
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=URL, api_key=KEY, api_version=VERSION))
        meter.default_meter().subscribe(records.append)
        for _ in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]):
            pass
        report()
    """,
    "wrap_async_azure_openai": """
        import asyncio, openai
        async def main():
            client = meter.wrap(openai.AsyncAzureOpenAI(azure_endpoint=URL, api_key=KEY, api_version=VERSION))
            meter.default_meter().subscribe(records.append)
            await client.responses.create(model="gpt-5", input="hi")
        asyncio.run(main())
        report()
    """,
    "wrap_openai_v1": """
        import openai
        client = meter.wrap(openai.OpenAI(base_url=URL + "/openai/v1/", api_key=KEY))
        meter.default_meter().subscribe(records.append)
        client.embeddings.create(model="text-embedding-3-small", input="hi")
        report()
    """,
    "wrap_legacy_httpx_client": """
        import httpx, openai
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=URL, api_key=KEY, api_version=VERSION,
                                               http_client=httpx.Client()))
        meter.default_meter().subscribe(records.append)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        report()
    """,
    "wrap_httpx2_client": """
        import httpx2
        client = meter.wrap(httpx2.Client(timeout=30))
        meter.default_meter().subscribe(records.append)
        client.post(URL + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + VERSION,
                    headers={"api-key": KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
        report()
    """,
    "metered_transport": """
        import httpx2
        client = httpx2.Client(transport=meter.MeteredTransport(httpx2.HTTPTransport()))
        meter.default_meter().subscribe(records.append)
        client.post(URL + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + VERSION,
                    headers={"api-key": KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
        report()
    """,
    "async_metered_transport_httpx": """
        import asyncio, httpx
        async def main():
            client = httpx.AsyncClient(transport=meter.AsyncMeteredTransport(httpx.AsyncHTTPTransport()))
            meter.default_meter().subscribe(records.append)
            await client.post(URL + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + VERSION,
                              headers={"api-key": KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
        asyncio.run(main())
        report()
    """,
    "wrap_httpx2_client_with_settings": """
        import httpx2
        client = meter.wrap(httpx2.Client(timeout=30, mounts={"http://unused.example": httpx2.HTTPTransport()}))
        meter.default_meter().subscribe(records.append)
        client.post(URL + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + VERSION,
                    headers={"api-key": KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
        report()
    """,
    "two_threads_first_call_at_once": """
        # the first call of two threads builds the default meter at the same moment
        import threading, httpx2
        meter_ready = threading.Barrier(2)
        def one():
            meter_ready.wait()
            client = meter.wrap(httpx2.Client())
            client.post(URL + "/openai/deployments/gpt-4o-mini/chat/completions?api-version=" + VERSION,
                        headers={"api-key": KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
        threads = [threading.Thread(target=one) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert meter.default_meter() is meter.default_meter()
        print("[]")
    """,
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_documented_default_runs_in_a_fresh_process(name: str, emu: Emulator) -> None:
    out = run_fresh(PRELUDE + _dedent(SNIPPETS[name]), timeout=60, env={"EMU_URL": emu.url})
    records = json.loads(out.strip().splitlines()[-1])
    if name in ("default_meter", "two_threads_first_call_at_once"):
        return
    assert len(records) == 1, records
    (record,) = records
    assert record["outcome"] == "ok"
    assert record["usage"] and record["source"] in ("response", "stream")
    assert record["cost"] is not None  # the built-in price book priced it (the emulator serves known models)


def test_litellm_instrument_default(emu: Emulator) -> None:
    pytest.importorskip("litellm")
    code = PRELUDE + _dedent("""
        import litellm
        from meter.integrations import litellm as metered_litellm
        metered_litellm.instrument()
        meter.default_meter().subscribe(records.append)
        litellm.responses(model="azure/gpt-5", input="hi", api_base=URL, api_key=KEY,
                          api_version="2025-04-01-preview")
        report()
    """)
    records = json.loads(run_fresh(code, timeout=120, env={"EMU_URL": emu.url}).strip().splitlines()[-1])
    assert [r["api"] for r in records] == ["responses"]


def test_langchain_default(emu: Emulator) -> None:
    pytest.importorskip("langchain_openai")
    code = PRELUDE + _dedent("""
        import httpx2
        from langchain_openai import AzureChatOpenAI
        llm = AzureChatOpenAI(azure_deployment="gpt-4o-mini", api_version=VERSION, azure_endpoint=URL, api_key=KEY,
                              http_client=meter.wrap(httpx2.Client()),
                              http_async_client=meter.wrap(httpx2.AsyncClient()))
        meter.default_meter().subscribe(records.append)
        llm.invoke("hi")
        report()
    """)
    records = json.loads(run_fresh(code, timeout=120, env={"EMU_URL": emu.url}).strip().splitlines()[-1])
    assert [r["api"] for r in records] == ["chat"] and records[0]["usage"]


def test_every_readme_default_is_covered_here() -> None:
    """Each client a README or docs line wraps without ``meter=`` has a fresh-process snippet above."""
    import re
    from pathlib import Path

    from tests.reliability.fresh import REPO

    covered = "\n".join([*SNIPPETS.values(), PRELUDE, "langchain_openai AzureChatOpenAI httpx2.AsyncClient",
                         "litellm instrument"])
    missing = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line in Path(doc).read_text().splitlines():
            if "meter=" in line:
                continue
            for built in re.findall(r"meter\.wrap\(\s*(\w+\.\w+)\(", line) + re.findall(
                    r"(\w+\.\w+)\(transport=meter\.(?:Async)?MeteredTransport", line):
                if built not in covered:
                    missing.append(f"{doc.name}: {built} ({line.strip()})")
    assert not missing, missing


def test_bad_deployment_map_is_reported_at_wrap_time_not_in_a_call() -> None:
    out = run_fresh(_dedent("""
        import httpx2, meter, pricing
        try:
            meter.wrap(httpx2.Client())
        except meter.pricing.PricingFileError as exc:
            print("ERROR:", exc)
        else:
            print("no error")
    """), env={"METER_DEPLOYMENTS": "{not json"})
    assert out.startswith("ERROR: $METER_DEPLOYMENTS (JSON text)"), out
    assert "not valid JSON" in out


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)


def test_a_default_meter_that_cannot_be_built_inside_a_call_never_raises_into_it(
        emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the default meter is (re)built lazily inside a call and fails, the call goes through unmetered."""
    import httpx2

    import meter
    import meter.hub as hub

    client = meter.wrap(httpx2.Client())  # built fine here
    monkeypatch.setattr(hub, "_default", None)  # as if it had never been built
    monkeypatch.setenv("METER_DEPLOYMENTS", "{not json")
    response = client.post(f"{emu.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}",
                           headers={"api-key": API_KEY}, json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["usage"]["total_tokens"] > 0
    assert hub._default is None
