"""The 429 meter answers itself for a refused call: Azure's error shape, no retries by the openai SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx2
import openai
import pytest

from meter.budgets import BudgetLedger, Refusal, load_budgets, refusal_answer, retry_after_seconds

NOW = datetime(2027, 1, 31, 22, 0, 0, 500000, tzinfo=UTC)


def refusal(name: str = "search-monthly", now: datetime = NOW, **fields: str) -> Refusal:
    (budget,) = load_budgets([{"name": name, "period": "month", "limit_usd": "5", "enforce": "hard", **fields}])
    ledger = BudgetLedger([budget], clock=lambda: now)
    result = ledger.reserve("call", [budget], Decimal("6"))
    assert isinstance(result, Refusal)
    return result


def test_the_answer_is_azures_error_shape_with_the_budget_and_its_reset() -> None:
    answer = refusal_answer(refusal())
    assert answer.status == 429
    headers = dict(answer.headers)
    assert headers["x-should-retry"] == "false" and headers["content-type"] == "application/json"
    assert headers["retry-after"] == str(2 * 3600) and headers["content-length"] == str(len(answer.body))
    error = json.loads(answer.body)["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota" and error["param"] is None
    assert error["budget"] == "search-monthly" and error["reset_at"] == "2027-02-01T00:00:00Z"
    assert error["message"] == ("Budget 'search-monthly' (hard, 5 USD per month) refused this call: its worst case, "
                                "6 USD, is more than the whole limit; lower max_output_tokens. It resets at "
                                "2027-02-01T00:00:00Z.")


def test_retry_after_is_whole_seconds_rounded_up_and_never_zero() -> None:
    assert retry_after_seconds(NOW + timedelta(seconds=1.2), NOW) == 2
    assert retry_after_seconds(NOW, NOW) == 1
    assert retry_after_seconds(NOW - timedelta(hours=1), NOW) == 1


def test_any_budget_name_gives_an_ascii_body_and_ascii_headers() -> None:
    """A name from ``Meter(budgets=[...])`` may be any valid text (and its message quotes it): the body is ASCII
    JSON and no header carries the name."""
    answer = refusal_answer(refusal("équipe-検索-🔍"))
    assert answer.body.isascii()
    assert json.loads(answer.body)["error"]["budget"] == "équipe-検索-🔍"
    assert all(name.isascii() and value.isascii() for name, value in answer.headers)


@pytest.mark.parametrize("client_kind", ["openai", "azure"])
@pytest.mark.parametrize("seconds_to_reset", [30, 7200])
def test_the_openai_sdk_raises_once_without_retrying(client_kind: str, seconds_to_reset: int) -> None:
    """The real SDK with its default retries (2) gets the answer: one request, one ``RateLimitError`` carrying
    the code and the budget. 30 seconds to the reset is a ``retry-after`` the SDK would wait and retry after:
    ``x-should-retry: false`` is what stops it (past 120 seconds the SDK gives up on its own)."""
    answer = refusal_answer(refusal(now=datetime(2027, 2, 1, tzinfo=UTC) - timedelta(seconds=seconds_to_reset)))
    assert dict(answer.headers)["retry-after"] == str(seconds_to_reset)
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(answer.status, headers=list(answer.headers), content=answer.body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client: openai.OpenAI
    if client_kind == "azure":
        client = openai.AzureOpenAI(azure_endpoint="https://r.openai.azure.com", api_key="k",
                                    api_version="2024-10-21", http_client=http)
    else:
        client = openai.OpenAI(base_url="https://r.openai.azure.com/openai/v1/", api_key="k", http_client=http)
    assert client.max_retries == 2
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="chat-prod", messages=[{"role": "user", "content": "hi"}])
    assert len(seen) == 1, "the SDK retried a budget refusal"
    assert caught.value.code == "budget_exceeded" and caught.value.type == "insufficient_quota"
    assert isinstance(caught.value.body, dict) and caught.value.body["budget"] == "search-monthly"


def test_the_message_says_what_is_spent_and_held_when_the_limit_is_near() -> None:
    (budget,) = load_budgets([{"name": "b", "period": "day", "limit_usd": "5", "enforce": "hard"}])
    ledger = BudgetLedger([budget], clock=lambda: NOW)
    held = ledger.reserve("a", [budget], Decimal("3"))
    assert not isinstance(held, Refusal)
    no = ledger.reserve("b", [budget], Decimal("2.5"))
    assert isinstance(no, Refusal)
    assert no.message == ("Budget 'b' (hard, 5 USD per day) refused this call: 0 USD spent and 3 USD held by calls "
                          "in flight leave too little for its worst case of 2.5 USD. It resets at "
                          "2027-02-01T00:00:00Z.")
    assert dict(refusal_answer(no).headers)["retry-after"] == "7200"
