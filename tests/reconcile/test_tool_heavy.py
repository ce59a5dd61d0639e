"""A tool-heavy bill reconciles (issue 22): Azure bills tool fees, audio, images, Batch and Priority under meter names
of their own, and ``meter reconcile`` reads them into the classes the ledger's calls are metered in.

The ledger is real: calls through ``meter.MeteredTransport`` (answers shaped like Azure's, served by a mock
transport on ``aoai-tools.openai.azure.com``) written by ``Meter(ledger=...)``. The export is built here, apart
from meter's reader and pricing: the documented EA and FOCUS columns (``billing``), the real meter names and
units of measure of the Retail snapshot (``pricing/azure-retail/2026-08-11-azure-openai.json``) and their list
prices, the quantities read from the answers the test itself serves: three file search calls, two code
interpreter sessions, a whisper hour, three dall-e-3 images, gpt-image-1's text, image and output tokens, two
Batch output lines and a Priority call. It agrees to the cent with nothing unexplained; the one web search, which
no Azure meter bills, is listed as unpriced. A planted difference in each class is found exactly, in its unit.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client import CollectorRegistry

import meter
from meter.pricing import DeploymentInfo
from meter.reconcile.billed import combine
from meter.reconcile.explain import Reconciliation, reconcile
from meter.reconcile.exports import read_file
from meter.reconcile.metered import read_ledger
from tests.reconcile.billing import Charge, write_ea, write_focus
from tests.reconcile.test_reconcile import _cli, kinds

SNAPSHOT = Path(__file__).resolve().parents[2] / "pricing" / "azure-retail" / "2026-08-11-azure-openai.json"
HOST = "https://aoai-tools.openai.azure.com"
RESOURCE = "aoai-tools"
RESOURCE_ID = f"/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/ai/providers/" \
              f"Microsoft.CognitiveServices/accounts/{RESOURCE}"
DEPLOYMENTS = {name: DeploymentInfo(model, "GlobalStandard", "eastus2") for name, model in (
    ("gpt-5", "gpt-5"), ("whisper", "whisper"), ("dall-e-3", "dall-e-3"), ("gpt-image-1", "gpt-image-1"),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"))}
BLOCKS = {"1K": 1000, "1M": 1_000_000, "1": 1, "100": 100, "1 Hour": 1}

# What the test serves, and so what Azure bills: (meter name, quantity in the meter's unit of measure).
BILL = (
    ("GPT 5 Inpt Glbl 1M Tokens", 1000 + 800),  # the two Responses calls with tools
    ("GPT 5 outpt Glbl 1M Tokens", 200 + 100),
    ("file-search-tool-calls-glbl Calls", 3),  # three file_search_call items
    ("Code-Interpreter-global Session", 2),  # two containers
    ("5 pp inp Gl 1M Tokens", 500),  # the Priority chat call
    ("5 pp opt Gl 1M Tokens", 50),
    ("Speech-to-Text-Batch-Whisper-glbl Unit", 1),  # one hour of audio: 3,600 seconds
    ("Image-Dall-E-3 HD HighRes-glbl Images", 2),  # hd, 1792x1024
    ("Image-Dall-E-3 Std LowRes-glbl Images", 1),  # the defaults: standard, 1024x1024
    ("gpt-image-1-inp-txt-glbl Tokens", 20),
    ("gpt-image-1-inp-img-glbl Tokens", 30),
    ("gpt-image-1-output-img-glbl Tokens", 1000),
    ("gpt-4o-mini-0718-Batch-Inp-glbl Tokens", 1000 + 500),  # the Batch output file's two lines
    ("gpt-4o-mini-0718-Batch-Outp-glbl Tokens", 100 + 50),
)
# Each meter's line: (model, class, unit, what one unit of the meter's quantity is in the class's unit).
CLASSES = {
    "GPT 5 Inpt Glbl 1M Tokens": ("gpt-5", "input", "tokens", 1),
    "GPT 5 outpt Glbl 1M Tokens": ("gpt-5", "output", "tokens", 1),
    "file-search-tool-calls-glbl Calls": ("built-in-tools", "file_search", "calls", 1),
    "Code-Interpreter-global Session": ("built-in-tools", "code_interpreter", "sessions", 1),
    "5 pp inp Gl 1M Tokens": ("gpt-5", "input (priority)", "tokens", 1),
    "5 pp opt Gl 1M Tokens": ("gpt-5", "output (priority)", "tokens", 1),
    "Speech-to-Text-Batch-Whisper-glbl Unit": ("whisper", "audio_minute", "seconds", 3600),
    "Image-Dall-E-3 HD HighRes-glbl Images": ("dall-e-3", "image_hd_wide", "images", 1),
    "Image-Dall-E-3 Std LowRes-glbl Images": ("dall-e-3", "image_standard", "images", 1),
    "gpt-image-1-inp-txt-glbl Tokens": ("gpt-image-1", "input", "tokens", 1),
    "gpt-image-1-inp-img-glbl Tokens": ("gpt-image-1", "image_input", "tokens", 1),
    "gpt-image-1-output-img-glbl Tokens": ("gpt-image-1", "image_output", "tokens", 1),
    "gpt-4o-mini-0718-Batch-Inp-glbl Tokens": ("gpt-4o-mini-2024-07-18", "input (batch)", "tokens", 1),
    "gpt-4o-mini-0718-Batch-Outp-glbl Tokens": ("gpt-4o-mini-2024-07-18", "output (batch)", "tokens", 1),
}


@cache
def _retail() -> dict[str, tuple[str, Decimal]]:
    """Meter name -> (unit of measure, list price) from the Retail snapshot: of a Global meter (one price wherever
    the deployment is), the item in eastus2, else in the most regions, the latest start first."""
    out: dict[str, tuple[str, Decimal, tuple[bool, str, int]]] = {}
    for item in json.loads(SNAPSHOT.read_text(encoding="utf-8"))["items"]:
        name = item["meterName"]
        if name in CLASSES:
            rank = ("eastus2" in item["regions"], item["effectiveStartDate"], len(item["regions"]))
            if name not in out or out[name][2] < rank:
                out[name] = (item["unitOfMeasure"], Decimal(str(item["retailPrice"])), rank)
    assert set(out) == set(CLASSES)
    return {name: (unit, price) for name, (unit, price, _) in out.items()}


def charge(day: date, name: str, quantity: Decimal | int) -> Charge:
    unit, price = _retail()[name]
    return Charge(day, name, Decimal(quantity), unit, BLOCKS[unit], price, resource_id=RESOURCE_ID)


def _responses(output: list[dict[str, Any]], response_id: str, prompt: int, completion: int) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": response_id, "object": "response", "model": "gpt-5", "status": "completed",
        "output": [*output, {"id": f"msg_{response_id}", "type": "message", "role": "assistant", "status": "completed",
                             "content": [{"type": "output_text", "text": "done", "annotations": []}]}],
        "usage": {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}})


def _batch_line(n: int, prompt: int, completion: int) -> str:
    return json.dumps({"id": f"batch_req_{n}", "custom_id": f"r{n}", "response": {"status_code": 200, "body": {
        "id": f"chatcmpl-{n}", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}},
        "error": None}) + "\n"


def run_tool_heavy(ledger: Path) -> list[meter.CallRecord]:
    """The workload: every call Azure bills under a meter of its own, metered into ``ledger``."""
    records: list[meter.CallRecord] = []
    m = meter.Meter(registry=CollectorRegistry(), otel=False, ledger=ledger, on_record=records.append,
                    deployments=DEPLOYMENTS)
    image = {"b64_json": "AA=="}
    answers: list[httpx2.Response] = [
        _responses([{"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": ["q"]},
                    {"id": "fs_2", "type": "file_search_call", "status": "completed", "queries": ["q"]},
                    {"id": "ci_1", "type": "code_interpreter_call", "status": "completed", "container_id": "cntr_1",
                     "code": "1+1", "outputs": []}], "resp_1", 1000, 200),
        _responses([{"id": "fs_3", "type": "file_search_call", "status": "completed", "queries": ["q"]},
                    {"id": "ws_1", "type": "web_search_call", "status": "completed"},
                    {"id": "ci_2", "type": "code_interpreter_call", "status": "completed", "container_id": "cntr_2",
                     "code": "2+2", "outputs": []}], "resp_2", 800, 100),
        httpx2.Response(200, json={"id": "chatcmpl-p", "object": "chat.completion", "model": "gpt-5",
                                   "service_tier": "priority", "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "now"}}],
                                   "usage": {"prompt_tokens": 500, "completion_tokens": 50, "total_tokens": 550}}),
        httpx2.Response(200, json={"text": "an hour of standup", "usage": {"type": "duration", "seconds": 3600}}),
        httpx2.Response(200, json={"created": 1, "data": [image, image]}),
        httpx2.Response(200, json={"created": 1, "data": [image]}),
        httpx2.Response(200, json={"created": 1, "data": [image], "usage": {
            "input_tokens": 50, "input_tokens_details": {"text_tokens": 20, "image_tokens": 30}, "output_tokens": 1000,
            "output_tokens_details": {"image_tokens": 1000}, "total_tokens": 1050}}),
        httpx2.Response(200, content=(_batch_line(1, 1000, 100) + _batch_line(2, 500, 50)).encode(),
                        headers={"content-type": "application/octet-stream"}),
    ]
    served = iter(answers)
    transport = meter.MeteredTransport(httpx2.MockTransport(lambda request: next(served)), meter=m)
    with httpx2.Client(transport=transport, base_url=HOST) as c:
        tools = [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "code_interpreter",
                                                                         "container": {"type": "auto"}}]
        c.post("/openai/v1/responses", json={"model": "gpt-5", "input": "find it", "tools": tools})
        c.post("/openai/v1/responses", json={"model": "gpt-5", "input": "and search", "tools": [
            *tools, {"type": "web_search"}]})
        c.post("/openai/deployments/gpt-5/chat/completions?api-version=2025-04-01-preview",
               json={"messages": [{"role": "user", "content": "now"}], "service_tier": "priority"})
        c.post("/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21",
               files={"file": ("standup.wav", b"RIFF0000", "audio/wav")}, data={"model": "whisper"})
        c.post("/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21",
               json={"prompt": "a chart", "n": 2, "quality": "hd", "size": "1792x1024"})
        c.post("/openai/deployments/dall-e-3/images/generations?api-version=2024-10-21", json={"prompt": "a cat"})
        c.post("/openai/deployments/gpt-image-1/images/generations?api-version=2025-04-01-preview",
               json={"prompt": "a bar chart"})
        c.get("/openai/v1/files/file-out/content")
    assert m.close()
    assert len(records) == len(answers) and all(r.outcome == "ok" for r in records)
    return records


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, date]:
    ledger = tmp_path_factory.mktemp("tools") / "ledger.sqlite"
    records = run_tool_heavy(ledger)
    days = {r.started_at.date() for r in records}
    if len(days) > 1:
        pytest.skip("the workload ran across midnight UTC")
    return ledger, days.pop()


def bill(day: date, **changed: Decimal | int | None) -> list[Charge]:
    """The bill of the workload; ``changed`` maps a meter name (spaces and dashes as ``_``) to its new quantity
    (``None``: the row is left out)."""
    out = []
    for name, quantity in BILL:
        key = name.replace(" ", "_").replace("-", "_")
        new = changed.get(key, quantity)
        if new is not None:
            out.append(charge(day, name, new))
    return out


def run(ledger: Path, path: Path) -> Reconciliation:
    billed = combine([read_file(path)])
    return reconcile(billed, read_ledger(ledger, {}, timedelta(minutes=10), split=billed.split))


@pytest.mark.parametrize("schema", ["ea", "focus"])
def test_a_tool_heavy_bill_reconciles_to_nothing_unexplained(work: tuple[Path, date], tmp_path: Path,
                                                             schema: str) -> None:
    ledger, day = work
    charges = bill(day)
    path = (write_ea if schema == "ea" else write_focus)(tmp_path / "bill.csv", charges)
    result = run(ledger, path)
    assert kinds(result) == ["unpriced"], [f.text for f in result.findings]
    assert result.unexplained == 0 and result.unexplained_unpriced == 0 and not result.unknown
    assert not result.commitments  # whisper's "1 Hour" is hours of audio, not of a deployment
    lines = {(line.model, line.kind): line for line in result.lines}
    for name, quantity in BILL:
        model, kind, unit, scale = CLASSES[name]
        line = lines.pop((model, kind))
        assert line.explanations == ["agrees"], (name, line)
        assert line.unit == unit and line.billed_tokens == line.metered_tokens == quantity * scale, (name, line)
        assert line.billed_cost == line.metered_cost, (name, line)
    (web,) = lines.values()  # the one line left: web search, metered, never billed, never priced
    assert (web.model, web.kind, web.unit, web.metered_tokens, web.billed_tokens) == (
        "built-in-tools", "web_search", "calls", 1, 0)
    assert web.explanations == ["unpriced"] and web.metered_cost is None and web.unexplained_cost == 0
    billed = sum((c.cost for c in charges), Decimal(0))
    assert result.billed_total == billed == result.totals.billed.value
    assert result.totals.metered.value == billed and result.totals.metered.unpriced == 1  # web search: never 0
    (rollup,) = result.rollups
    assert rollup.coverage == 1
    assert billed == Decimal("0.00225") + Decimal("0.003") + Decimal("0.0075") + Decimal("0.06") + \
        Decimal("0.00125") + Decimal("0.001") + Decimal("0.36") + Decimal("0.24") + Decimal("0.04") + \
        Decimal("0.0001") + Decimal("0.0003") + Decimal("0.04") + Decimal("0.0001125") + Decimal("0.000045")


PLANTS = [(name, Decimal("0.5") if CLASSES[name][2] == "seconds" else 7) for name, _ in BILL]


@pytest.mark.parametrize(("name", "extra"), PLANTS, ids=[p[0] for p in PLANTS])
def test_a_planted_difference_in_each_class_is_found_exactly(work: tuple[Path, date], tmp_path: Path, name: str,
                                                             extra: Decimal | int) -> None:
    """``extra`` more of one meter billed than the workload made (half an hour of whisper, 7 of anything else):
    exactly one finding, unmetered, in that class, of exactly that quantity in the class's unit, at its price."""
    ledger, day = work
    quantity = dict(BILL)[name]
    charges = bill(day, **{name.replace(" ", "_").replace("-", "_"): quantity + extra})
    result = run(ledger, write_ea(tmp_path / "bill.csv", charges))
    assert kinds(result) == ["unmetered", "unpriced"], [f.text for f in result.findings]
    found = next(f for f in result.findings if f.kind == "unmetered")
    model, kind, unit, scale = CLASSES[name]
    assert (found.model, found.token_class, found.tokens) == (model, kind, extra * scale)
    assert f"{extra * scale:,} {kind} {unit} billed that meter did not meter" in found.text
    planted = charge(day, name, extra).cost
    assert found.cost is not None and abs(found.cost - planted) <= planted * Decimal("1e-9")
    assert result.unexplained == 0  # unmetered is explained, and shows in the coverage
    (rollup,) = result.rollups
    assert rollup.coverage is not None and rollup.coverage < 1


def test_a_class_metered_but_not_billed_is_unexplained_exactly(work: tuple[Path, date], tmp_path: Path) -> None:
    """The code interpreter row left out of the bill: the two sessions meter metered are not billed, and nothing
    explains them (the calls succeeded): 2 x 0.03 USD unexplained."""
    ledger, day = work
    result = run(ledger, write_ea(tmp_path / "bill.csv", bill(day, Code_Interpreter_global_Session=None)))
    assert kinds(result) == ["not-billed", "unpriced"], [f.text for f in result.findings]
    missing = next(f for f in result.findings if f.kind == "not-billed")
    assert (missing.model, missing.token_class, missing.tokens) == ("built-in-tools", "code_interpreter", 2)
    assert "2 code_interpreter sessions metered that the export does not bill" in missing.text
    assert result.unexplained == Decimal("0.06")


def test_a_price_difference_on_a_tool_fee_is_named_in_its_own_terms(work: tuple[Path, date], tmp_path: Path) -> None:
    """File search billed at 3 USD per 1,000 calls, not the list 2.5: a price finding per 1,000 calls, with the
    entry for built-in-tools that would make them agree."""
    ledger, day = work
    charges = [replace(c, price=Decimal(3)) if c.meter.startswith("file-search") else c for c in bill(day)]
    result = run(ledger, write_ea(tmp_path / "bill.csv", charges))
    assert kinds(result) == ["price", "unpriced"], [f.text for f in result.findings]
    price = next(f for f in result.findings if f.kind == "price")
    assert (price.model, price.token_class) == ("built-in-tools", "file_search")
    assert "file_search: export 3 vs meter 2.5 USD per 1,000 calls" in price.text
    assert 'model = "built-in-tools"' in price.detail["price_entry"] and 'file_search = "3"' in price.detail[
        "price_entry"]


def test_the_command_shows_units_and_passes_the_gate(work: tuple[Path, date], tmp_path: Path) -> None:
    ledger, day = work
    path = write_ea(tmp_path / "bill.csv", bill(day))
    done = _cli("--ledger", str(ledger), str(path), "--fail-above", "2%")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unexplained: 0 USD of" in done.stdout
    web = next(line for line in done.stdout.splitlines() if "web_search" in line and line.startswith(str(day)))
    assert web.split()[4:] == ["calls", "0", "0", "1", "unpriced", "-1", "unpriced"], web
    whisper = next(line for line in done.stdout.splitlines() if "audio_minute" in line)
    assert whisper.split()[4:7] == ["seconds", "3,600", "0.36"], whisper
    assert "* unpriced [aoai-tools built-in-tools web_search]: 1 web_search calls metered" in done.stdout
    as_csv = _cli("--ledger", str(ledger), str(path), "--format", "csv").stdout.splitlines()
    assert as_csv[0].startswith("day,resource,model,token_class,unit,billed_tokens")
    assert any(",built-in-tools,code_interpreter,sessions,2," in row for row in as_csv), as_csv
