"""Every recorded case, replayed over a real loopback socket through every adapter.

The shared corpus (``../shared/conformance``) is real Azure/OpenAI traffic: its ``cases/`` and its
``cases-billing/`` (audio, images, Batch output, compaction, built-in tools); the project's own
cases (``tests/fixtures/cases``) are written from the documented formats. Each must yield its
``expected.json`` exactly (one record, usage, ids, outcome), and the caller must get the very bytes
the server sent.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import httpx2
import pytest

import meter
from tests.support.cases import OWN_CASES, SHARED_CONFORMANCE, Case, load_cases
from tests.support.replay import ReplayServer, serve_case

STACKS = {"httpx": httpx, "httpx2": httpx2}
_SKIP_REQUEST_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


def _cases(root: Any) -> list[Case]:
    return load_cases(root) if root.is_dir() else []


OWN = _cases(OWN_CASES)
SHARED = _cases(SHARED_CONFORMANCE)
BILLING_CASES = SHARED_CONFORMANCE / "cases-billing"
BILLING = _cases(BILLING_CASES)

CORPUS_API = {
    "transcriptions": "audio.transcriptions",
    "translations": "audio.translations",
    "speech": "audio.speech",
    "images": "images",
    "batch_output": "files.content",
}
"""meter's api name -> the corpus's name for that endpoint (``cases-billing/SOURCES.md``, X1): the corpus
names endpoints outside chat / Responses / embeddings its own way; meter's names are its own."""


def as_expected(record: meter.CallRecord) -> dict[str, Any]:
    """A record in the corpus' expected.json schema (estimates are not reported usage)."""
    usage = None
    if record.usage is not None and record.usage_source != "estimated":
        usage = {k: getattr(record.usage, k) for k in
                 ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens",
                  "total_tokens")}
    error = None
    if record.outcome == "http_error":
        error = {"status": record.status_code, "code": record.error_code}
    return {
        "api": CORPUS_API.get(record.api, record.api),
        "stream": record.stream,
        "response_model": record.response_model,
        "response_id": record.response_id,
        "usage": usage,
        "finish_reasons": list(record.finish_reasons) if record.finish_reasons is not None else None,
        "error": error,
    }


def _request_args(case: Case, srv: ReplayServer) -> dict[str, Any]:
    headers = {k: v for k, v in case.request_headers.items() if k.lower() not in _SKIP_REQUEST_HEADERS}
    content = json.dumps(case.request_body).encode() if case.request_body is not None else None
    return {"method": case.method, "url": srv.url + case.path, "headers": headers, "content": content}


def expected_outcome(expected: dict[str, Any]) -> str:
    """The outcome a case's expected.json implies: an error is ``http_error``; a Responses call that
    ended ``incomplete`` names its reason (anything but ``completed``); everything else is ``ok``."""
    if expected.get("error") is not None:
        return "http_error"
    reasons = expected.get("finish_reasons")
    if expected.get("api") == "responses" and reasons and reasons != ["completed"]:
        return "incomplete"
    return "ok"


def _check(case: Case, record: meter.CallRecord, decoded: bytes) -> None:
    assert decoded == case.body, "the caller must receive the recorded body unchanged"
    expected = case.expected
    assert as_expected(record) == {k: expected.get(k) for k in as_expected(record)}
    assert record.outcome == expected_outcome(expected)
    if expected.get("usage") is None and record.usage is not None:
        assert record.usage_source == "estimated"


def replay_sync(stack: Any, case: Case, srv: ReplayServer, split: int | None = None) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, hosts=["127.0.0.1"])  # OpenAI cases: loopback stands in
    serve_case(srv, case, split=split)
    with stack.Client(transport=meter.MeteredTransport(stack.HTTPTransport(), m)) as client:
        with client.stream(**_request_args(case, srv)) as response:
            decoded = b"".join(response.iter_bytes())
    m.flush()
    assert len(records) == 1 and not m.faults
    _check(case, records[0], decoded)


async def replay_async(stack: Any, case: Case, srv: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, hosts=["127.0.0.1"])  # OpenAI cases: loopback stands in
    serve_case(srv, case)
    transport = meter.AsyncMeteredTransport(stack.AsyncHTTPTransport(), m)
    async with stack.AsyncClient(transport=transport) as client:
        async with client.stream(**_request_args(case, srv)) as response:
            decoded = b"".join([chunk async for chunk in response.aiter_bytes()])
    m.flush()
    assert len(records) == 1 and not m.faults
    _check(case, records[0], decoded)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", OWN, ids=[c.name for c in OWN])
def test_own_case_sync(stack: str, case: Case, server: ReplayServer) -> None:
    replay_sync(STACKS[stack], case, server)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", OWN, ids=[c.name for c in OWN])
async def test_own_case_async(stack: str, case: Case, server: ReplayServer) -> None:
    await replay_async(STACKS[stack], case, server)


@pytest.mark.parametrize("case", OWN, ids=[c.name for c in OWN])
def test_own_case_in_tiny_chunks(case: Case, server: ReplayServer) -> None:
    replay_sync(httpx2, case, server, split=7)


shared = pytest.mark.skipif(
    not SHARED,
    reason=f"shared conformance corpus not found at {SHARED_CONFORMANCE} (CI has it beside the checkout)",
)


@shared
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", SHARED, ids=[c.name for c in SHARED])
def test_conformance_sync(stack: str, case: Case, server: ReplayServer) -> None:
    replay_sync(STACKS[stack], case, server)


@shared
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", SHARED, ids=[c.name for c in SHARED])
async def test_conformance_async(stack: str, case: Case, server: ReplayServer) -> None:
    await replay_async(STACKS[stack], case, server)


@shared
@pytest.mark.parametrize("case", SHARED, ids=[c.name for c in SHARED])
def test_conformance_in_odd_chunks(case: Case, server: ReplayServer) -> None:
    replay_sync(httpx2, case, server, split=13)


@shared
def test_conformance_corpus_is_complete() -> None:
    assert len(SHARED) == 30


billing = pytest.mark.skipif(
    not BILLING,
    reason=f"shared billing corpus not found at {BILLING_CASES} (CI has it beside the checkout)",
)


@billing
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", BILLING, ids=[c.name for c in BILLING])
def test_billing_case_sync(stack: str, case: Case, server: ReplayServer) -> None:
    replay_sync(STACKS[stack], case, server)


@billing
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", BILLING, ids=[c.name for c in BILLING])
async def test_billing_case_async(stack: str, case: Case, server: ReplayServer) -> None:
    await replay_async(STACKS[stack], case, server)


@billing
@pytest.mark.parametrize("case", BILLING, ids=[c.name for c in BILLING])
def test_billing_case_in_odd_chunks(case: Case, server: ReplayServer) -> None:
    replay_sync(httpx2, case, server, split=13)


@billing
def test_billing_corpus_is_complete() -> None:
    assert len(BILLING) == 15
    assert {c.api for c in BILLING} - {"chat", "responses"} <= set(CORPUS_API.values())


def test_ci_has_the_shared_corpus() -> None:
    """In CI the corpus lies beside the checkout; a missing corpus must fail there, not skip."""
    if os.environ.get("CI") and not SHARED:
        pytest.fail(f"CI=true but the shared conformance corpus is missing at {SHARED_CONFORMANCE}")
    if os.environ.get("CI") and not BILLING:
        pytest.fail(f"CI=true but the shared billing corpus is missing at {BILLING_CASES}")
