"""The caller's key goes upstream and nowhere else: not in logs, output, metrics, spans or records."""

from __future__ import annotations

import logging

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from meter.apps.emulator import Emulator, EmulatorConfig
from meter.apps.proxy import ProxyServer
from tests.proxy.conftest import API_VERSION, Metered

SECRET = "sk-SECRET-d1st1nct1ve-7f3a9c"
QUERY_SECRET = "qs-SECRET-5b2e81"


def test_the_key_never_leaves_the_request(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    with Emulator(EmulatorConfig(api_key=SECRET)) as emu:
        metered = Metered(emu.url, otel=True, tracer_provider=tracer_provider)
        with ProxyServer(emu.url, meter=metered.meter) as proxy:
            with openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=SECRET, api_version=API_VERSION,
                                    max_retries=0, default_query={"subscription-key": QUERY_SECRET}) as azure:
                azure.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                list(azure.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                   messages=[{"role": "user", "content": "hi"}]))
                with azure.responses.stream(model="gpt-5", input="hi") as stream:
                    stream.get_final_response()
            with openai.OpenAI(base_url=proxy.url + "/openai/v1/", api_key=SECRET, max_retries=0) as v1:
                v1.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            with openai.AzureOpenAI(azure_endpoint=proxy.url, api_key=SECRET + "-wrong", api_version=API_VERSION,
                                    max_retries=0) as wrong, pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            records = metered.wait_records(5)
    assert [r.status_code for r in records] == [200, 200, 200, 200, 401]
    spans = exporter.get_finished_spans()
    assert len(spans) == 5
    access = [r.getMessage() for r in caplog.records if r.name == "meter.proxy"]
    assert len(access) == 5
    assert access[0].startswith("POST /openai/deployments/gpt-4o-mini/chat/completions 200 ")
    out, err = capfd.readouterr()
    kept = "\n".join([generate_latest(metered.registry).decode(), repr(records),
                      "\n".join(span.to_json() for span in spans)])
    proxy_logs = "\n".join(r.getMessage() for r in caplog.records if r.threadName == "meter-proxy")
    assert "receive_response_headers" in proxy_logs  # DEBUG really was captured, down to the connection layer
    for text in (caplog.text, "\n".join(r.getMessage() for r in caplog.records), out, err, kept):
        assert SECRET not in text
    # The caller's own SDK logs its URLs, query included, at INFO; nothing on the proxy's side may.
    assert QUERY_SECRET not in proxy_logs + kept
