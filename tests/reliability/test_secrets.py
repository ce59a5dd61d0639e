"""Property 8: secrets and content. Keys never reach records, spans, metrics, logs or meter's exceptions;
prompt text only when capture is on.

A workload through the real SDK and plain httpx2, carrying an ``api-key``, an
``Authorization: Bearer`` token, an ``Ocp-Apim-Subscription-Key`` and secrets in
the query string, streaming and not, a 401, a metering fault, against the
emulator over real sockets, with spans exported over real OTLP (the encoded
protobuf bodies are searched, not only the decoded spans), a Prometheus
exposition, and every log line of meter's loggers at DEBUG. (The proxy's side is
tests/proxy/test_secrets.py; its error answers are checked in test_proxy_attacks.py.)
"""

from __future__ import annotations

import logging

import httpx2
import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter.apps.emulator import Emulator, EmulatorConfig
from tests.support.emulator_fixtures import API_VERSION
from tests.support.otlp_receiver import OtlpReceiver

KEY = "sk-KEY-1f2e3d4c5b6a"
BEARER = "eyJBEARER.7a8b9c0d"
APIM = "apim-SUB-0a9b8c7d"
QUERY = "qs-SIG-5e4d3c2b"
PROMPT = "the secret plan for tuesday"
SECRETS = (KEY, BEARER, APIM, QUERY)


def _workload(emu: Emulator, m: meter.Meter) -> None:
    azure = meter.wrap(openai.AzureOpenAI(
        azure_endpoint=emu.url, api_key=KEY, api_version=API_VERSION, max_retries=0,
        default_headers={"Ocp-Apim-Subscription-Key": APIM}, default_query={"subscription-key": QUERY}), meter=m)
    azure.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    list(azure.chat.completions.create(model="gpt-4o-mini", stream=True,
                                       messages=[{"role": "user", "content": PROMPT}]))
    azure.responses.create(model="gpt-5", input=PROMPT)
    with pytest.raises(openai.AuthenticationError):
        meter.wrap(openai.AzureOpenAI(azure_endpoint=emu.url, api_key=KEY + "-wrong", api_version=API_VERSION,
                                      max_retries=0), meter=m).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    with meter.wrap(httpx2.Client(), meter=m) as plain:
        plain.post(f"{emu.url}/openai/v1/chat/completions?sig={QUERY}",
                   headers={"Authorization": f"Bearer {BEARER}", "api-key": KEY},
                   json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]})


@pytest.mark.parametrize("capture", [False, True])
def test_no_secret_anywhere_and_content_only_when_asked(capture: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="meter")
    records: list[meter.CallRecord] = []

    def broken(record: meter.CallRecord) -> None:
        raise RuntimeError("a subscriber fault, logged with its traceback")

    registry = CollectorRegistry()
    with OtlpReceiver() as receiver, Emulator(EmulatorConfig(api_key=KEY)) as emu:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.traces_endpoint)))
        m = meter.Meter(on_record=[records.append, broken], tracer_provider=provider, registry=registry,
                        capture_content=capture, label_keys=("team",))
        with meter.attribute(team="search"):
            _workload(emu, m)
        spans = receiver.wait_for_spans(5)
        raw = b"".join(receiver.raw_bodies)
    assert len(records) == 5 and [r.status_code for r in records].count(401) == 1
    assert m.faults.get("subscriber") == 5
    meter_logs = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                           for r in caplog.records if r.name.startswith("meter"))
    assert "subscriber fault" in meter_logs  # the fault really was logged, traceback included
    kept = {"records": repr(records), "spans": repr([s.attributes for s in spans]), "otlp": raw.decode("latin-1"),
            "metrics": generate_latest(registry).decode(), "logs": meter_logs}
    for where, text in kept.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {where}"
    for where in ("records", "metrics", "logs"):
        assert PROMPT not in kept[where], f"prompt text in {where}"
    assert (PROMPT in kept["spans"]) is capture and (PROMPT.encode() in raw) is capture


def test_meters_own_errors_carry_no_secret() -> None:
    client = meter.wrap(httpx2.Client(headers={"api-key": KEY}), meter=meter.Meter(otel=False, prometheus=False))
    with pytest.raises(ValueError) as refused:
        meter.wrap(client, meter=meter.Meter(otel=False, prometheus=False))
    assert KEY not in str(refused.value) and KEY not in repr(refused.value)
