"""The include_usage rewrite: only where it is safe, and byte-preserving."""

from __future__ import annotations

import json

import pytest

from meter.core.request import accepts_stream_options, estimate_input_tokens, parse_body, with_include_usage
from meter.core.route import Route, match

BODY = b'{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true}'


def route_for(path: str, query: str = "", host: str = "res.openai.azure.com") -> Route:
    route = match("POST", host, None, path, query)
    assert route is not None
    return route


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("2023-05-15", False), ("2024-02-01", False), ("2024-06-01", False), ("2024-07-01-preview", False),
        ("2024-08-01-preview", True), ("2024-10-21", True), ("2025-04-01-preview", True),
        ("preview", True), ("v1", True), (None, False), ("someday", False),
    ],
)
def test_api_version_rule(version: str | None, accepted: bool) -> None:
    query = "" if version is None else f"api-version={version}"
    assert accepts_stream_options(route_for("/openai/deployments/d/chat/completions", query)) is accepted


def test_v1_and_openai_accept() -> None:
    assert accepts_stream_options(route_for("/openai/v1/chat/completions"))
    assert accepts_stream_options(route_for("/v1/chat/completions", host="api.openai.com"))


def test_rewrite_splices_without_touching_other_bytes() -> None:
    route = route_for("/openai/deployments/d/chat/completions", "api-version=2024-10-21")
    info, parsed = parse_body(BODY)
    new = with_include_usage(route, info, BODY, parsed)
    assert new == BODY[:-1] + b',"stream_options":{"include_usage":true}}'
    assert json.loads(new)["stream_options"] == {"include_usage": True}


def test_rewrite_merges_existing_stream_options() -> None:
    body = b'{"stream":true,"stream_options":{"include_obfuscation":false}}'
    route = route_for("/openai/v1/chat/completions")
    info, parsed = parse_body(body)
    new = with_include_usage(route, info, body, parsed)
    assert new is not None
    assert json.loads(new)["stream_options"] == {"include_obfuscation": False, "include_usage": True}


@pytest.mark.parametrize(
    "body",
    [
        b'{"stream":false,"messages":[]}',  # not streaming
        b'{"stream":true,"stream_options":{"include_usage":false}}',  # the caller chose
        b'{"stream":true,"stream_options":{"include_usage":true}}',  # already set
        b"not json",
    ],
)
def test_no_rewrite(body: bytes) -> None:
    route = route_for("/openai/v1/chat/completions")
    info, parsed = parse_body(body)
    assert with_include_usage(route, info, body, parsed) is None


def test_no_rewrite_on_old_api_version_or_responses() -> None:
    info, parsed = parse_body(BODY)
    old = route_for("/openai/deployments/d/chat/completions", "api-version=2024-06-01")
    assert with_include_usage(old, info, BODY, parsed) is None
    responses = route_for("/openai/v1/responses")
    assert with_include_usage(responses, info, BODY, parsed) is None


def test_estimate_input_tokens() -> None:
    parsed = {"messages": [{"role": "user", "content": "x" * 400},
                           {"role": "user", "content": [{"type": "text", "text": "y" * 40}]}]}
    # 440 characters / 4 = 110, plus 3 per list item (2 messages + 1 part)
    assert estimate_input_tokens(parsed) == 110 + 9
    assert estimate_input_tokens(None) == 0


def test_merging_into_existing_stream_options_keeps_every_other_byte() -> None:
    """Spliced, never re-serialised: 1.0e-1 stays 1.0e-1, \\u00e9 stays escaped, spacing stays."""
    body = (b'{ "model": "m", "stream": true, "temperature": 1.0e-1,\n  "messages": [{"role": "user", '
            b'"content": "caf\\u00e9"}], "stream_options" : { "include_obfuscation": false } }')
    info, parsed = parse_body(body)
    new = with_include_usage(route_for("/openai/v1/chat/completions"), info, body, parsed)
    assert new is not None
    assert new == body.replace(b'{ "include_obfuscation"', b'{"include_usage":true, "include_obfuscation"')
    assert json.loads(new)["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_merging_into_an_empty_or_duplicated_stream_options() -> None:
    route = route_for("/openai/v1/chat/completions")
    for body, expected in [
        (b'{"stream":true,"stream_options":{}}', b'{"stream":true,"stream_options":{"include_usage":true}}'),
        (b'{"stream":true,"stream_options":{"a":1},"stream_options":{ }}',  # the last one is what counts
         b'{"stream":true,"stream_options":{"a":1},"stream_options":{"include_usage":true }}'),
    ]:
        info, parsed = parse_body(body)
        assert with_include_usage(route, info, body, parsed) == expected
