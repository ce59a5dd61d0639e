"""A call's units and tool calls reach the span and Prometheus (issue 22, "where it shows"): seconds of
audio, images and their variant, tool calls per tool, and the cost with the fees in it."""

from __future__ import annotations

from typing import Any

import httpx2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter import names

HOST = "https://r.openai.azure.com"


def _calls(m: meter.Meter) -> None:
    answers = {
        "transcriptions": httpx2.Response(200, json={"text": "hi", "usage": {"type": "duration", "seconds": 90}}),
        "generations": httpx2.Response(200, json={"created": 1, "data": [{"url": "u"}]}),
        "responses": httpx2.Response(200, json={
            "id": "resp_u", "object": "response", "model": "gpt-4.1-mini", "status": "completed",
            "output": [{"id": "fs_1", "type": "file_search_call"}, {"id": "ws_1", "type": "web_search_call"}],
            "usage": {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11}}),
    }

    def answer(request: httpx2.Request) -> httpx2.Response:
        return answers[request.url.path.rsplit("/", 1)[-1]]

    with httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(answer), meter=m)) as client:
        client.post(HOST + "/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
                    files={"file": ("a.wav", b"RIFF", "audio/wav")})
        client.post(HOST + "/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21",
                    json={"prompt": "p", "quality": "hd"})
        client.post(HOST + "/openai/v1/responses", json={"model": "gpt-4.1-mini"})
    m.flush()


def _sample(exposition: str, family: str, api: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(family + "{") and f'api="{api}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {family} for {api}")


def test_prometheus_counts_units_tool_calls_and_their_fees() -> None:
    registry = CollectorRegistry()
    _calls(meter.Meter(otel=False, registry=registry))
    text = generate_latest(registry).decode()
    assert f"# HELP llm_audio_seconds_total {names.PROMETHEUS_UNIT_KINDS[0].help}" in text
    assert _sample(text, "llm_audio_seconds_total", "transcriptions") == 90
    assert _sample(text, "llm_images_total", "images") == 1
    assert _sample(text, "llm_cost_usd_total", "transcriptions") == 0.009
    assert _sample(text, "llm_cost_usd_total", "images") == 0.08  # hd, square
    assert _sample(text, "llm_file_search_calls_total", "responses") == 1
    assert _sample(text, "llm_web_search_calls_total", "responses") == 1
    assert _sample(text, "llm_unpriced_requests_total", "responses") == 1  # web search: no Azure meter


def test_the_span_carries_units_and_tool_calls() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _calls(meter.Meter(prometheus=False, tracer_provider=provider))
    spans: dict[str, Any] = {}
    for span in exporter.get_finished_spans():
        assert span.attributes is not None
        spans[str(span.attributes["gen_ai.operation.name"])] = span.attributes
    transcription, image = spans["transcription"], spans["image_generation"]
    assert transcription["meter.usage.audio.seconds"] == 90
    assert transcription[names.USAGE_COST_AMOUNT] == 0.009
    assert names.USAGE_INPUT_TOKENS not in transcription  # billed by its units: no token usage is claimed
    assert (image["meter.usage.images"], image[names.IMAGE_VARIANT]) == (1, "hd")
    responses = next(attrs for op, attrs in spans.items() if op not in ("transcription", "image_generation"))
    assert responses["meter.usage.file_search.calls"] == 1 and responses["meter.usage.web_search.calls"] == 1
