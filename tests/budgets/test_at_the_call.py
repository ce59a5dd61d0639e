"""Budgets at the call (issue 24, integration): a call is held against its budgets before it is sent,
settled at its cost, and a hard budget refuses with meter's own 429, through the real openai SDK over
loopback sockets (httpx2 and httpx, sync and async): the refused request never reaches the server."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest

import meter
from meter.budgets import BudgetFileError
from tests.support.replay import CannedResponse, ReplayServer

API_VERSION = "2024-10-21"
PATH = "/openai/deployments/gpt-4o/chat/completions"
ANSWER = {"id": "chatcmpl-b", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
          "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}
COST = Decimal(1000) * Decimal("2.5") / 1_000_000 + Decimal(500) * Decimal(10) / 1_000_000  # 0.0075
HARD = {"name": "search-daily", "match": {"team": "search"}, "period": "day", "limit_usd": "0.015",
        "enforce": "hard"}


@pytest.fixture
def server() -> Any:
    with ReplayServer() as srv:
        srv.add("POST", PATH, CannedResponse.json(200, ANSWER))
        yield srv


def _meter(records: list[meter.CallRecord], budgets: Any) -> meter.Meter:
    return meter.Meter(otel=False, prometheus=False, on_record=records.append, budgets=budgets)


def _ask(client: openai.AzureOpenAI) -> Any:
    return client.chat.completions.create(model="gpt-4o", max_tokens=1000,
                                          messages=[{"role": "user", "content": "hello"}])


@pytest.mark.parametrize("legacy", [False, True], ids=["httpx2", "httpx"])
def test_a_hard_budget_refuses_before_anything_is_sent_and_the_sdk_does_not_retry(server: ReplayServer,
                                                                                    legacy: bool) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records, [HARD])
    kwargs: dict[str, Any] = {"http_client": cast(Any, httpx.Client())} if legacy else {}
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                           **kwargs), meter=m)  # the SDK's default: 2 retries
    with meter.attribute(team="search"):
        _ask(client)  # worst case 0.01 fits the 0.015; it settles at 0.0075
        sent = len(server.requests)
        with pytest.raises(openai.RateLimitError) as raised:
            _ask(client)  # 0.0075 spent + a 0.01 worst case would pass 0.015
    assert len(server.requests) == sent  # the refused request never left, and was not retried
    assert raised.value.code == "budget_exceeded" and "search-daily" in str(raised.value)
    assert m.flush(10)  # records and settlements come on the metering worker
    ok, refused = records
    assert ok.budgets == ("search-daily",) and ok.cost is not None and ok.cost.total == COST
    assert (refused.status_code, refused.error_code, refused.budgets) == (429, "budget_exceeded", ())
    assert m.budgets is not None and m.budgets.refused() == {"search-daily": 1}
    [status] = m.budgets.store.status()
    assert (status.spent, status.reserved) == (COST, Decimal(0))


def test_the_async_client_is_refused_the_same_way(server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "limit_usd": "0.001"}])

    async def run() -> None:
        client = meter.wrap(openai.AsyncAzureOpenAI(azure_endpoint=server.url, api_key="k",
                                                    api_version=API_VERSION), meter=m)
        with meter.attribute(team="search"), pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", max_tokens=1000,
                                                 messages=[{"role": "user", "content": "hello"}])

    asyncio.run(run())
    assert m.flush(10)  # records and settlements come on the metering worker
    assert server.requests == [] and [r.status_code for r in records] == [429]


def test_a_soft_budget_never_refuses_and_counts_every_call(server: ReplayServer) -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "enforce": "soft", "name": "everything", "match": {}}])
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION),
                        meter=m)
    for _ in range(4):
        _ask(client)
    assert m.flush(10)  # records and settlements come on the metering worker
    assert [r.status_code for r in records] == [200] * 4 and all(r.budgets == ("everything",) for r in records)
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert status.spent == 4 * COST > Decimal("0.015") and m.budgets.refused() == {}


def test_an_error_the_service_answered_costs_nothing_and_frees_its_hold() -> None:
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "match": {}}])
    with ReplayServer() as server:
        server.add("POST", PATH, CannedResponse.json(400, {"error": {"code": "content_filter", "message": "no"}}))
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                               max_retries=0), meter=m)
        with pytest.raises(openai.BadRequestError):
            _ask(client)
    assert m.flush(10)  # records and settlements come on the metering worker
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert (status.spent, status.reserved) == (Decimal(0), Decimal(0))


def test_a_bad_budgets_file_fails_the_meter_not_a_call(tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text('[[budget]]\nname = "x"\nperiod = "fortnight"\nlimit_usd = "5"\n', encoding="utf-8")
    with pytest.raises(BudgetFileError) as raised:
        meter.Meter(otel=False, prometheus=False, budgets=str(path))
    assert str(path) in str(raised.value) and "period" in str(raised.value)
    with pytest.raises(ValueError, match="need pricing"):
        meter.Meter(otel=False, prometheus=False, price_book=False, budgets=[HARD])


def test_a_call_whose_only_unknown_is_a_web_search_fee_settles_at_its_priced_part() -> None:
    answer = {"id": "resp_ws", "object": "response", "model": "gpt-4o-2024-11-20", "status": "completed",
              "output": [{"id": "ws_1", "type": "web_search_call"}],
              "usage": {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}}
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "match": {}, "limit_usd": "5", "enforce": "soft"}])
    with ReplayServer() as server:
        server.add("POST", "/openai/v1/responses", CannedResponse.json(200, answer))
        client = meter.wrap(openai.OpenAI(base_url=server.url + "/openai/v1", api_key="k"), meter=m)
        client.responses.create(model="gpt-4o", input="search the web", tools=[{"type": "web_search"}])
    assert m.flush(10)  # records and settlements come on the metering worker
    [record] = records
    assert record.cost is not None and record.cost.total is None  # the web search part has no Azure price
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert status.spent == COST  # the tokens, exactly: not the worst case of an uncapped output


def test_an_image_call_is_held_at_n_images_of_its_price_and_refused_past_the_limit() -> None:
    answer = {"created": 1, "data": [{"url": "https://example.com/1.png", "revised_prompt": "a cat"}]}
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "match": {}, "limit_usd": "0.2"}])
    with ReplayServer() as server:
        server.add("POST", "/openai/deployments/dall-e-3/images/generations", CannedResponse.json(200, answer))
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION),
                            meter=m)
        client.images.generate(model="dall-e-3", prompt="a cat", quality="hd", size="1792x1024")
        with pytest.raises(openai.RateLimitError):  # 0.12 spent + a 0.12 worst case would pass 0.2
            client.images.generate(model="dall-e-3", prompt="a cat", quality="hd", size="1792x1024")
        assert len(server.requests) == 1
    assert m.flush(10)  # records and settlements come on the metering worker
    ok, refused = records
    assert ok.cost is not None and ok.cost.total == Decimal("0.12") and refused.status_code == 429
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert (status.spent, status.reserved) == (Decimal("0.12"), Decimal(0))


def test_a_batch_output_download_is_never_refused_and_is_charged_its_cost() -> None:
    line = {"id": "b1", "custom_id": "r1", "response": {"status_code": 200, "body": {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18", "choices": [],
        "usage": {"prompt_tokens": 10_000, "completion_tokens": 100, "total_tokens": 10_100}}}}
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "match": {}, "limit_usd": "0.0001"},
                         {"name": "all", "period": "day", "limit_usd": "5"}])
    with ReplayServer() as server:
        server.add("GET", "/openai/files/file-abc/content",
                   CannedResponse(200, [("Content-Type", "application/octet-stream")], [json.dumps(line).encode()],
                                  chunked=False))
        client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION),
                            meter=m)
        first = client.files.content("file-abc").content
        second = client.files.content("file-abc").content  # the hard budget is past its limit now
        assert first == second == json.dumps(line).encode() and len(server.requests) == 2
    assert m.flush(10)  # records and settlements come on the metering worker
    one, two = records
    assert one.cost is not None and one.cost.total is not None and one.cost.total > Decimal("0.0001")
    assert (one.budgets, two.budgets) == (("search-daily", "all"), ("all",))
    assert m.budgets is not None and m.budgets.refused() == {}
    hard, everything = m.budgets.store.status()
    assert (hard.spent, hard.reserved) == (one.cost.total, Decimal(0))
    assert (everything.spent, everything.reserved) == (2 * one.cost.total, Decimal(0))


def test_retrieving_a_response_is_never_refused_and_a_repeat_costs_nothing() -> None:
    answer = {"id": "resp_r", "object": "response", "model": "gpt-4o-2024-11-20", "status": "completed",
              "output": [], "usage": {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}}
    records: list[meter.CallRecord] = []
    m = _meter(records, [{**HARD, "match": {}}])
    with ReplayServer() as server:
        server.add("POST", "/openai/v1/responses", CannedResponse.json(200, answer))
        server.add("GET", "/openai/v1/responses/resp_r", CannedResponse.json(200, answer))
        client = meter.wrap(openai.OpenAI(base_url=server.url + "/openai/v1", api_key="k"), meter=m)
        client.responses.create(model="gpt-4o", input="hello", max_output_tokens=1000)
        with pytest.raises(openai.RateLimitError):  # 0.0075 spent + a 0.01 worst case would pass 0.015
            client.responses.create(model="gpt-4o", input="hello", max_output_tokens=1000)
        client.responses.retrieve("resp_r")  # spent already: held at 0, never refused
        assert len(server.requests) == 2
    assert m.flush(10)  # records and settlements come on the metering worker
    created, refused, retrieved = records
    assert created.budgets == ("search-daily",) and created.cost is not None and created.cost.total == COST
    assert (refused.status_code, retrieved.status_code, retrieved.repeat) == (429, 200, True)
    assert retrieved.budgets == ("search-daily",)
    assert m.budgets is not None
    [status] = m.budgets.store.status()
    assert (status.spent, status.reserved, status.estimated_calls) == (COST, Decimal(0), 0)


def test_back_to_back_calls_under_a_hard_budget_see_the_last_ones_real_cost(server: ReplayServer) -> None:
    """With the metering worker (the default), a call held against a hard budget is settled on its own
    thread as it ends: the next call's reservation sees its real cost (0.0075), not its worst case (0.01)
    still held, which would refuse it falsely. Calls charged to soft budgets only settle on the worker."""
    import threading

    threads: list[str] = []
    m = meter.Meter(otel=False, prometheus=False, on_record=lambda r: threads.append(threading.current_thread().name),
                    budgets=[{**HARD, "limit_usd": "0.0176"}, {**HARD, "name": "soft", "match": {"team": "ads"},
                                                               "enforce": "soft", "limit_usd": "5"}])
    assert m.metering == "worker"
    client = meter.wrap(openai.AzureOpenAI(azure_endpoint=server.url, api_key="k", api_version=API_VERSION,
                                           max_retries=0), meter=m)
    with meter.attribute(team="search"):
        _ask(client)  # 0.01 held, 0.0075 settled
        _ask(client)  # 0.0075 + 0.01 <= 0.0176: passes only if the first is settled already
    with meter.attribute(team="ads"):
        _ask(client)
    assert m.flush(10)
    assert threads == [threading.current_thread().name] * 2 + ["meter-metering"]
    assert m.budgets is not None and m.budgets.refused() == {}
