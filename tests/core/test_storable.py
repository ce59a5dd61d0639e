"""``meter.core.storable``: every value a caller or a response controls comes out storable, and the usual
value comes out as the very same object (nothing changed, nothing counted)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meter.core import storable
from meter.core.call import CallEnd
from meter.core.record import AzureHeaders, Usage
from meter.core.request import RequestInfo, parse_body
from meter.core.route import Route, match
from meter.core.storable import MAX_INT32, MAX_INT64, MAX_ITEMS, MAX_TEXT, REPLACEMENT

ROUTE = match("POST", "res.openai.azure.com", 443, "/openai/deployments/gpt-4o-mini/chat/completions",
              "api-version=2024-10-21", frozenset())
AZURE = AzureHeaders(region="East US", apim_request_id="1f6a3b0c-2d4e-4f5a-9b8c-7d6e5f4a3b2c",
                     request_id="1f6a3b0c-2d4e-4f5a-9b8c-7d6e5f4a3b2c", deployment_name="gpt-4o-mini",
                     served_model="gpt-4o-mini-2024-07-18", ratelimit_remaining_tokens=149_000,
                     ratelimit_remaining_requests=249, ratelimit_limit_tokens=150_000, ratelimit_limit_requests=250,
                     retry_after_s=1.5)
END = CallEnd(200, "ok", None, None, Usage(input_tokens=3, output_tokens=2, total_tokens=5), "response", ("stop",),
              0.5, None, AZURE, "gpt-4o-mini-2024-07-18", "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", False, False,
              ("Hello, ça va? 😀\n",))


def storable_text(value: str, bound: int | None = MAX_TEXT) -> bool:
    """What the stores need, checked the slow way: UTF-8 encodable, no NUL, short enough."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value and (bound is None or len(value) <= bound)


def _route() -> Route:
    assert ROUTE is not None
    return ROUTE


# -- text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["gpt-4o-mini", "", "é-model", "日本語", "😀 pair", "tab\tand\nnewline",
                                   "x" * MAX_TEXT])
def test_storable_text_is_the_same_object(value: str) -> None:
    assert storable.text(value) is value
    assert storable.is_storable(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("a\ud800b", f"a{REPLACEMENT}b"),                       # a lone high surrogate (json.loads keeps it)
    ("a\udfffb", f"a{REPLACEMENT}b"),                       # a lone low one
    ("\udc00\ud800", REPLACEMENT * 2),                      # the wrong order is no pair
    ("a\x00b", f"a{REPLACEMENT}b"),                         # NUL: PostgreSQL text refuses it
    ("é\x00", f"é{REPLACEMENT}"),
    ("x" * (MAX_TEXT + 1), "x" * MAX_TEXT),                  # cut to the bound
    ("é" * 10_000, "é" * MAX_TEXT),
])
def test_unstorable_text_is_repaired(value: str, expected: str) -> None:
    assert not storable.is_storable(value)
    assert storable.text(value) == expected


def test_unbounded_text_is_repaired_but_not_cut() -> None:
    long = "y" * 100_000 + "\ud800"
    assert storable.text(long, None) == "y" * 100_000 + REPLACEMENT
    assert storable.text("z" * 100_000, None) == "z" * 100_000


def test_a_value_that_is_not_text_becomes_its_str() -> None:
    assert storable.text(12345) == "12345"  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=600))
def test_any_text_comes_out_storable_and_clean_text_unchanged(value: str) -> None:
    clean = storable.text(value)
    assert storable_text(clean)
    assert storable.is_storable(value) == storable_text(value)
    if storable_text(value):
        assert clean is value
    else:
        assert len(clean) == min(len(value), MAX_TEXT)  # one character for one: nothing shifts


# -- the start ------------------------------------------------------------------------------------------


def test_a_clean_start_is_returned_as_it_was() -> None:
    route, info, attributes = _route(), RequestInfo(model="gpt-4o-mini"), {"team": "search", "é": "ü"}
    out = storable.clean_start(route, info, attributes, 3)
    assert out[0] is route and out[1] is info and out[2] is attributes and out[3] == 3 and out[4] == ()


@pytest.mark.parametrize(("path", "query", "model", "attributes", "attempt", "changed"), [
    ("/openai/deployments/d\x00/chat/completions", "", None, {}, None, ("deployment",)),
    ("/openai/deployments/" + "d" * 300 + "/chat/completions", "", None, {}, None, ("deployment",)),
    ("/openai/v1/chat/completions", "api-version=v1%00", "m", {}, None, ("api_version",)),
    ("/openai/v1/responses/resp_\ud800/cancel", "", None, {}, None, ("response_id",)),
    ("/openai/v1/chat/completions", "", "a\ud800b", {}, None, ("request_model",)),
    ("/openai/v1/chat/completions", "", "m", {"team": "a\x00"}, None, ("attributes",)),
    ("/openai/v1/chat/completions", "", "m", {"t\ud800": "a"}, None, ("attributes",)),
    ("/openai/v1/chat/completions", "", "m", {"t": "v" * 257}, None, ("attributes",)),
    ("/openai/v1/chat/completions", "", "m", {}, 99999999999999999999, ("attempt",)),
    ("/openai/v1/chat/completions", "", "m", {}, MAX_INT32 + 1, ("attempt",)),
    ("/openai/v1/chat/completions", "", "m", {}, -1, ("attempt",)),
])
def test_each_unstorable_start_value_is_repaired_and_named(path: str, query: str, model: str | None,
                                                          attributes: dict[str, str], attempt: int | None,
                                                          changed: tuple[str, ...]) -> None:
    route = match("POST", "res.openai.azure.com", None, path, query, frozenset())
    assert route is not None
    route2, info, attributes2, attempt2, names = storable.clean_start(route, RequestInfo(model=model), attributes,
                                                                      attempt)
    assert names == changed
    for value in (route2.deployment, route2.api_version, route2.response_id, route2.server_address, info.model,
                  *attributes2, *attributes2.values()):
        assert value is None or storable_text(value)
    assert attempt2 is None or 0 <= attempt2 <= MAX_INT32
    if "attempt" in changed:
        assert attempt2 is None  # unknown, never a clamped number nobody sent


def test_the_largest_attempt_postgresql_holds_is_kept() -> None:
    assert storable.clean_start(_route(), RequestInfo(), {}, MAX_INT32)[3] == MAX_INT32


def test_a_request_model_from_json_with_a_lone_surrogate() -> None:
    """The issue's reproduction: ``{"model":"a\\ud800b"}`` parses to a lone surrogate."""
    info, _ = parse_body(b'{"model":"a\\ud800b"}')
    assert info.model == "a\ud800b"
    assert storable.clean_start(_route(), info, {}, None)[1].model == f"a{REPLACEMENT}b"


def test_the_captured_prompt_is_cleaned_without_changing_the_callers_object() -> None:
    raw = b'{"messages":[{"role":"user","content":"hi \\ud800"}],"\\udc00":1,"n":2.5}'
    assert storable.may_hold_surrogates(raw)
    parsed = json.loads(raw)
    clean, changed = storable.clean_tree(parsed)
    assert changed and clean == {"messages": [{"role": "user", "content": f"hi {REPLACEMENT}"}], REPLACEMENT: 1,
                                 "n": 2.5}
    assert parsed["messages"][0]["content"] == "hi \ud800"  # the original is untouched
    fine = json.loads(b'{"messages":[{"content":"\\ud83d\\ude00"}]}')  # a valid pair
    assert storable.clean_tree(fine) == (fine, False) and storable.clean_tree(fine)[0] is fine
    assert not storable.may_hold_surrogates(b'{"messages":[{"content":"plain \\u00e9"}]}')
    assert storable.may_hold_surrogates(b'{"c":"\xed\xa0\x80"}')  # raw bytes, decoded with surrogatepass


# -- the end --------------------------------------------------------------------------------------------


def test_a_clean_end_is_returned_as_it_was() -> None:
    assert storable.clean_end(END) == (END, ()) and storable.clean_end(END)[0] is END
    assert storable.end_is_clean(END._replace(azure=AzureHeaders(), finish_reasons=None, output_text=None))


@pytest.mark.parametrize(("change", "changed"), [
    ({"response_model": "a\ud800b"}, ("response_model",)),
    ({"response_model": "m" * 10_000}, ("response_model",)),
    ({"response_id": "c\x00"}, ("response_id",)),
    ({"error_type": "\udfff"}, ("error_type",)),
    ({"error_code": "x" * 300}, ("error_code",)),
    ({"finish_reasons": ("stop\x00",)}, ("finish_reasons",)),
    ({"finish_reasons": ("stop",) * (MAX_ITEMS + 1)}, ("finish_reasons",)),
    ({"status_code": 10**20}, ("status_code",)),
    ({"output_text": ("a\ud800", "b\x00")}, ("output_text",)),
    ({"azure": AzureHeaders(region="East\x00US")}, ("azure.region",)),
    ({"azure": AzureHeaders(served_model="s" * 257)}, ("azure.served_model",)),
    ({"azure": AzureHeaders(ratelimit_remaining_tokens=2**63)}, ("azure.ratelimit_remaining_tokens",)),
    ({"azure": AzureHeaders(ratelimit_limit_requests=10**30)}, ("azure.ratelimit_limit_requests",)),
    ({"azure": AzureHeaders(retry_after_s=math.inf)}, ("azure.retry_after_s",)),
    ({"azure": AzureHeaders(retry_after_s=math.nan)}, ("azure.retry_after_s",)),
])
def test_each_unstorable_end_value_is_repaired_and_named(change: dict[str, Any],
                                                        changed: tuple[str, ...]) -> None:
    end = END._replace(**change)
    assert not storable.end_is_clean(end)
    clean, names = storable.clean_end(end)
    assert names == changed
    a = clean.azure
    for value in (clean.response_model, clean.response_id, clean.error_type, clean.error_code, a.region,
                  a.apim_request_id, a.request_id, a.client_request_id, a.deployment_name, a.served_model,
                  *(clean.finish_reasons or ())):
        assert value is None or storable_text(value)
    for text in clean.output_text or ():
        assert storable_text(text, None)
    assert len(clean.finish_reasons or ()) <= MAX_ITEMS
    for number in (a.ratelimit_remaining_tokens, a.ratelimit_remaining_requests, a.ratelimit_limit_tokens,
                   a.ratelimit_limit_requests):
        assert number is None or 0 <= number <= MAX_INT64
    assert a.retry_after_s is None or math.isfinite(a.retry_after_s)
    assert clean.status_code is None or 0 <= clean.status_code <= MAX_INT32
    assert clean.usage is END.usage and clean.outcome == END.outcome  # the rest as it was


def test_the_shared_azure_headers_are_copied_never_changed() -> None:
    shared = AzureHeaders(region="bad\x00")
    clean, _ = storable.clean_end(END._replace(azure=shared))
    assert shared.region == "bad\x00" and clean.azure is not shared and clean.azure.region == f"bad{REPLACEMENT}"


def test_long_output_text_is_not_cut() -> None:
    text = "long answer " * 10_000
    assert storable.clean_end(END._replace(output_text=(text,)))[0].output_text == (text,)


def test_the_repair_fault_names_the_fields_never_the_values() -> None:
    fault = storable.ValueRepaired(("request_model", "attempt"))
    assert fault.fields == ("request_model", "attempt")
    assert "request_model, attempt" in str(fault) and isinstance(fault, ValueError)
