"""Route recognition: method + URL (+ body) -> the LLM call it is, or ``None``.

This runs on every request that goes through a metered transport, LLM or not,
so the rejection of foreign traffic is a few string tests before any regex or
allocation. Pure: no I/O, no httpx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from meter.record import Api

Operation = Literal["create", "retrieve", "resume", "cancel"]

PROVIDER_AZURE = "azure.ai.openai"
PROVIDER_OPENAI = "openai"

_OPENAI_HOSTS = frozenset({"api.openai.com"})

# Paths under an Azure resource ("/openai/..."), after repeated slashes are collapsed.
_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)/?$")
_AZURE_V1 = re.compile(r"^(?:/api/projects/[^/]+)?/openai/v1/(chat/completions|embeddings|responses)/?$")
_AZURE_RESPONSES = re.compile(r"^/openai/responses/?$")
_AZURE_RESPONSE_ID = re.compile(r"^(?:/api/projects/[^/]+)?/openai(?:/v1)?/responses/([^/]+)(/cancel)?/?$")
_FOUNDRY_MODELS = re.compile(r"^/models/chat/completions/?$")
# api.openai.com (and user-listed OpenAI-compatible hosts).
_OPENAI_V1 = re.compile(r"^/v1/(chat/completions|embeddings|responses)/?$")
_OPENAI_RESPONSE_ID = re.compile(r"^/v1/responses/([^/]+)(/cancel)?/?$")

_API_BY_SUFFIX: dict[str, Api] = {
    "chat/completions": "chat",
    "embeddings": "embeddings",
    "responses": "responses",
}


@dataclass(frozen=True, slots=True)
class Route:
    """What a request is, as far as the URL says.

    ``deployment`` is ``None`` when it lives in the request body (v1 paths and
    Responses); ``deployment_from_body`` then tells the caller to read it there.
    """

    api: Api
    operation: Operation
    provider: str
    server_address: str
    server_port: int | None
    api_version: str | None
    deployment: str | None
    deployment_from_body: bool
    response_id: str | None = None
    stream_query: bool = False
    starting_after: int | None = None
    v1: bool = False


def _collapse_slashes(path: str) -> str:
    if "//" not in path:
        return path
    return re.sub(r"/{2,}", "/", path)


def match(
    method: str,
    host: str,
    port: int | None,
    path: str,
    query: str,
    extra_hosts: frozenset[str] = frozenset(),
) -> Route | None:
    """Recognise an LLM call, or return ``None`` for anything else.

    Azure's ``/openai/...`` paths are distinctive, so they are recognised on any
    host (a gateway, a proxy, the embedded emulator). OpenAI's bare ``/v1/...``
    paths are only recognised on ``api.openai.com`` and on ``extra_hosts``, since
    many unrelated services use ``/v1/``.
    """
    if method != "POST" and method != "GET":
        return None
    if "/openai/" in path or path.startswith("/models/"):
        return _match_azure(method, host.lower(), port, _collapse_slashes(path), query)
    if path.startswith("/v1/") or path.startswith("//"):
        host_l = host.lower()
        if host_l in _OPENAI_HOSTS or host_l in extra_hosts:
            return _match_openai(method, host_l, port, _collapse_slashes(path), query)
    return None


def _query(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True) if query else {}


def _match_azure(method: str, host: str, port: int | None, path: str, query: str) -> Route | None:
    provider = PROVIDER_AZURE
    q = _query(query)
    api_version = q.get("api-version", [None])[0]
    if method == "POST":
        m = _AZURE_DEPLOYMENT.match(path)
        if m:
            return Route(
                api=_API_BY_SUFFIX[m.group(2)], operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=m.group(1), deployment_from_body=False,
            )
        m = _AZURE_V1.match(path)
        if m:
            return Route(
                api=_API_BY_SUFFIX[m.group(1)], operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version or "v1",
                deployment=None, deployment_from_body=True, v1=True,
            )
        if _AZURE_RESPONSES.match(path):
            return Route(
                api="responses", operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=None, deployment_from_body=True,
            )
        if _FOUNDRY_MODELS.match(path):
            return Route(
                api="chat", operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=None, deployment_from_body=True,
            )
    return _match_response_id(method, host, port, path, q, _AZURE_RESPONSE_ID, provider, api_version)


def _match_openai(method: str, host: str, port: int | None, path: str, query: str) -> Route | None:
    q = _query(query)
    if method == "POST":
        m = _OPENAI_V1.match(path)
        if m:
            return Route(
                api=_API_BY_SUFFIX[m.group(1)], operation="create", provider=PROVIDER_OPENAI,
                server_address=host, server_port=port, api_version=None,
                deployment=None, deployment_from_body=True, v1=True,
            )
    return _match_response_id(method, host, port, path, q, _OPENAI_RESPONSE_ID, PROVIDER_OPENAI, None)


def _match_response_id(
    method: str,
    host: str,
    port: int | None,
    path: str,
    q: dict[str, list[str]],
    pattern: re.Pattern[str],
    provider: str,
    api_version: str | None,
) -> Route | None:
    """``GET responses/{id}`` (retrieve or stream resume) and ``POST responses/{id}/cancel``."""
    m = pattern.match(path)
    if m is None:
        return None
    response_id, cancel = m.group(1), m.group(2)
    if cancel and method == "POST":
        operation: Operation = "cancel"
    elif not cancel and method == "GET":
        operation = "retrieve"
    else:
        return None
    stream_query = q.get("stream", ["false"])[0].lower() == "true"
    starting_after: int | None = None
    raw_after = q.get("starting_after", [None])[0]
    if raw_after is not None and raw_after.isdigit():
        starting_after = int(raw_after)
    if operation == "retrieve" and stream_query:
        operation = "resume"
    return Route(
        api="responses", operation=operation, provider=provider,
        server_address=host, server_port=port, api_version=api_version,
        deployment=None, deployment_from_body=False, response_id=response_id,
        stream_query=stream_query, starting_after=starting_after,
        v1="/v1/" in path,
    )
