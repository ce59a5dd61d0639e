"""Tool fees and the calls billed by seconds, images or image tokens (issue 22): the rows the generator writes for
them into 20-azure-retail.toml agree with the Retail meters they cite (each converted here, apart from the
generator, to what its column is per), and calls through meter carry their whole cost, or say which part is
unpriced."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

import meter
from meter.pricing import PriceBook

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "pricing" / "20-azure-retail.toml"
SNAPSHOT = ROOT / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json"
HOST = "https://r.openai.azure.com"
MODELS = ("built-in-tools", "whisper", "dall-e-3", "gpt-image-1")


def _meters() -> dict[str, list[dict[str, Any]]]:
    items = json.loads(SNAPSHOT.read_text(encoding="utf-8"))["items"]
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(item["meterName"], []).append(item)
    return out


PRICE_COLUMNS = ("file_search", "code_interpreter", "audio_minute", "image_standard", "image_standard_wide", "image_hd",
                 "image_hd_wide", "input", "image_input", "cached_input", "output", "image_output")


def _converted(item: dict[str, Any]) -> Decimal:
    """A meter's price in its column's terms, by its unit of measure: per 1M tokens, per 1,000 calls, per session,
    per minute, per image."""
    retail, unit, name = Decimal(str(item["retailPrice"])), item["unitOfMeasure"], item["meterName"]
    if unit == "1K" and "Tokens" in name:
        return retail * 1000  # per 1K tokens -> per 1M
    if unit == "1 Hour":
        return retail / 60  # per hour -> per minute
    if unit == "100":
        return retail / 100  # per 100 images -> per image
    return retail  # 1K calls (file search is per 1,000 calls), 1 session


def test_every_generated_row_is_the_price_of_the_meters_it_names() -> None:
    table = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    groups = table["region_groups"]
    meters = _meters()
    checked = 0
    for entry in table["price"]:
        if entry["model"] not in MODELS:
            continue
        names = entry["note"].removeprefix("meters: ").split("; ")
        regions = set(groups.get(entry["region"], [entry["region"]])) if "region" in entry else None
        for kind in PRICE_COLUMNS:
            if kind not in entry:
                continue
            candidates = [_converted(item) for name in names for item in meters[name]
                          if regions is None or regions <= set(item["regions"]) or set(item["regions"]) <= regions]
            assert Decimal(entry[kind]) in candidates, (entry, kind, candidates)
            checked += 1
    assert checked > 30


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


def _post(m: meter.Meter, path: str, answer: httpx2.Response, method: str = "POST",
          **request: Any) -> meter.CallRecord:
    records: list[meter.CallRecord] = []
    m.subscribe(records.append)
    with httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(lambda r: answer), meter=m)) as c:
        c.request(method, HOST + path, **request)
    m.flush()
    [record] = records
    return record


def test_whisper_is_billed_per_minute_of_audio() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    record = _post(m, "/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
                   httpx2.Response(200, json={"text": "hi", "usage": {"type": "duration", "seconds": 90}}),
                   files={"file": ("a.wav", b"RIFF0000", "audio/wav")}, data={"model": "whisper"})
    assert record.usage is None and record.units is not None and record.units.audio_seconds == 90
    assert record.cost is not None and record.cost.total == Decimal("0.009")  # 1.5 min x 0.006


def test_dall_e_3_is_billed_per_image_at_its_quality_and_size() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    record = _post(m, "/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21",
                   httpx2.Response(200, json={"created": 1, "data": [{"url": "u"}, {"url": "v"}]}),
                   json={"prompt": "a cat", "n": 2, "quality": "hd", "size": "1792x1024"})
    assert record.units is not None and (record.units.images, record.units.image_variant) == (2, "hd_wide")
    assert record.cost is not None and record.cost.total == Decimal("0.24")  # 2 x 12 USD per 100


def test_gpt_image_1_is_billed_by_its_text_and_image_tokens() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    usage = {"input_tokens": 50, "input_tokens_details": {"text_tokens": 20, "image_tokens": 30},
             "output_tokens": 1000, "output_tokens_details": {"image_tokens": 1000}, "total_tokens": 1050}
    record = _post(m, "/openai/deployments/gpt-image-1/images/edits?api-version=2025-04-01-preview",
                   httpx2.Response(200, json={"created": 1, "data": [{"b64_json": "AA=="}], "usage": usage}),
                   json={"prompt": "x"})
    assert record.units is None and record.usage is not None and record.usage.image_input_tokens == 30
    assert record.cost is not None
    assert record.cost.total == Decimal(20 * 5 + 30 * 10 + 1000 * 40) / 1_000_000


def _responses(output: list[dict[str, Any]], response_id: str) -> httpx2.Response:
    return httpx2.Response(200, json={"id": response_id, "object": "response", "model": "gpt-4.1-mini",
                                      "status": "completed", "output": output,
                                      "usage": {"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100}})


def test_file_search_and_code_interpreter_fees_are_in_the_cost() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    output = [{"id": "fs_1", "type": "file_search_call"}, {"id": "fs_2", "type": "file_search_call"},
              {"id": "ci_1", "type": "code_interpreter_call", "container_id": "cntr_1"}]
    record = _post(m, "/openai/v1/responses", _responses(output, "resp_fees"), json={"model": "gpt-4.1-mini"})
    cost = record.cost
    assert cost is not None and cost.total is not None, cost and cost.reason
    assert cost.amounts["file_search"] == Decimal("0.005")  # 2 calls x 2.5 USD per 1,000
    assert cost.amounts["code_interpreter"] == Decimal("0.03")  # one session
    tokens = Decimal(1000) * Decimal("0.4") / 1_000_000 + Decimal(100) * Decimal("1.6") / 1_000_000
    assert cost.total == tokens + Decimal("0.035")


def test_web_search_has_no_azure_meter_so_its_part_is_named_unpriced() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    record = _post(m, "/openai/v1/responses", _responses([{"id": "ws_1", "type": "web_search_call"}], "resp_ws"),
                   json={"model": "gpt-4.1-mini"})
    cost = record.cost
    assert cost is not None and cost.total is None and cost.amounts["web_search"] is None
    assert cost.amounts["input"] is not None and cost.reason is not None and "web_search" in cost.reason


def test_tts_1_characters_are_counted_and_unpriced_without_a_meter() -> None:
    m = meter.Meter(otel=False, prometheus=False)
    record = _post(m, "/openai/deployments/tts-1/audio/speech?api-version=2024-10-21",
                   httpx2.Response(200, content=b"ID3\x00binary", headers={"content-type": "audio/mpeg"}),
                   json={"model": "tts-1", "input": "Hello there", "voice": "alloy"})
    assert record.units is not None and record.units.speech_characters == 11
    assert record.cost is not None and record.cost.total is None and record.cost.basis == "unknown"


def test_a_batch_output_file_is_priced_at_the_batch_type(book: PriceBook) -> None:
    m = meter.Meter(otel=False, prometheus=False)
    line = {"id": "b1", "custom_id": "r1", "response": {"status_code": 200, "body": {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}}}
    record = _post(m, "/openai/v1/files/file-abc/content",
                   httpx2.Response(200, content=(json.dumps(line) + "\n").encode(),
                                   headers={"content-type": "application/octet-stream"}), method="GET")
    assert record.deployment_type == "GlobalBatch"
    assert record.cost is not None
    batch = book.cost_of(record.usage, model="gpt-4o-mini-2024-07-18", deployment_type="GlobalBatch",
                         at=record.started_at)
    standard = book.cost_of(record.usage, model="gpt-4o-mini-2024-07-18", at=record.started_at)
    assert record.cost.total == batch.total and batch.total is not None and standard.total is not None
    assert batch.total * 2 == standard.total
