"""Route recognition: method + URL (+ body) -> the LLM call it is, or ``None``.

This runs on every request that goes through a metered transport, LLM or not,
so the rejection of foreign traffic is a few string tests before any regex or
allocation. Pure: no I/O, no httpx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from meter.core.record import Api

Operation = Literal["create", "retrieve", "resume", "cancel", "compact"]

PROVIDER_AZURE = "azure.ai.openai"
PROVIDER_OPENAI = "openai"

_OPENAI_HOSTS = frozenset({"api.openai.com"})
AZURE_HOST_SUFFIXES = (
    ".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com", ".inference.ai.azure.com",
    ".models.ai.azure.com", ".azure-api.net",
    ".openai.azure.us", ".cognitiveservices.azure.us", ".azure-api.us",
    ".openai.azure.cn", ".cognitiveservices.azure.cn", ".azure-api.cn",
)
"""Azure resource and API Management hosts: a known call after any path prefix is metered there."""

_API_BY_SUFFIX: dict[tuple[str, ...], Api] = {
    ("chat", "completions"): "chat",
    ("embeddings",): "embeddings",
    ("responses",): "responses",
    ("audio", "transcriptions"): "transcriptions",
    ("audio", "translations"): "translations",
    ("audio", "speech"): "speech",
    ("images", "generations"): "images",
    ("images", "edits"): "images",
}
_DEPLOYMENT_APIS = frozenset({("chat", "completions"), ("embeddings",), ("audio", "transcriptions"),
                              ("audio", "translations"), ("audio", "speech"), ("images", "generations"),
                              ("images", "edits")})
"""The calls Azure also serves on ``/openai/deployments/{d}/...`` (the deployment in the path)."""

# Calls that bill nothing of their own, left unmetered on purpose: ``POST batches`` (the work is billed in
# the output file's lines) and ``GET batches/{id}`` (its ``usage`` repeats the output file's totals: counting
# both would count a batch twice); files other than ``files/{id}/content``; realtime client secrets.


@dataclass(slots=True)
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
    host (a gateway, a proxy, the embedded emulator), after any prefix
    (``/api/projects/{p}/``, an API Management path). OpenAI's bare ``/v1/...``
    paths are only recognised on ``api.openai.com`` and on ``extra_hosts``, since
    many unrelated services use ``/v1/``; on those and on Azure hosts a known call
    at the end of any path is recognised too (``/chat/completions``,
    ``/gw/deployments/d/embeddings``). Matching splits the path into segments
    and compares tuples: no regular expression on the per-request path.
    """
    if method != "POST" and method != "GET":
        return None
    if "/openai/" in path:
        parts = [p for p in path.split("/") if p]  # also collapses "//" and drops a trailing "/"
        # Any prefix before the "openai" segment: /api/projects/{p}/, an API Management path (/aoai/).
        return _match_azure(method, host.lower(), port, parts[parts.index("openai"):], _query(query))
    if path.startswith("/models/"):
        return _match_azure(method, host.lower(), port, [p for p in path.split("/") if p], _query(query))
    host = host.lower()
    azure_host = host.endswith(AZURE_HOST_SUFFIXES)
    if not (azure_host or host in _OPENAI_HOSTS or host in extra_hosts):
        return None  # foreign traffic: a few string tests and out
    parts = [p for p in path.split("/") if p]
    q = _query(query)
    if parts[:1] == ["v1"] and not azure_host:
        route = _match_openai(method, host, port, parts, q)
        if route is not None:
            return route
    provider = PROVIDER_AZURE if azure_host or "api-version" in q else PROVIDER_OPENAI
    return _match_suffix(method, host, port, parts, q, provider)


def _match_suffix(method: str, host: str, port: int | None, parts: list[str], q: dict[str, str],
                  provider: str) -> Route | None:
    """A known call at the end of any path, on Azure and configured hosts only (gateways that strip or
    rename the ``/openai`` prefix, bare ``/chat/completions`` on a resource host)."""
    api_version = q.get("api-version")
    if method == "POST":
        for size in (2, 1):
            tail = tuple(parts[-size:])
            if len(parts) >= size and tail in _API_BY_SUFFIX:
                head = parts[:-size]
                if len(head) >= 2 and head[-2] == "deployments" and tail in _DEPLOYMENT_APIS:
                    return Route(api=_API_BY_SUFFIX[tail], operation="create", provider=provider,
                                 server_address=host, server_port=port, api_version=api_version,
                                 deployment=head[-1], deployment_from_body=False)
                return Route(api=_API_BY_SUFFIX[tail], operation="create", provider=provider,
                             server_address=host, server_port=port, api_version=api_version,
                             deployment=None, deployment_from_body=True, v1=api_version is None)
    if method == "GET" and len(parts) >= 3 and parts[-3] == "files" and parts[-1] == "content":
        return _file_content(host, port, provider, api_version, api_version is None)
    for start in (len(parts) - 2, len(parts) - 3):
        if start >= 0 and parts[start] == "responses":
            return _match_response_id(method, host, port, parts[start:], q, provider, api_version,
                                      api_version is None)
    return None


def _file_content(host: str, port: int | None, provider: str, api_version: str | None,
                  v1: bool) -> Route:
    """``GET files/{id}/content``: a Batch output file's lines carry the usage of the batch's requests
    (any other file gives a record without usage)."""
    return Route(api="batch_output", operation="retrieve", provider=provider, server_address=host,
                 server_port=port, api_version=api_version, deployment=None, deployment_from_body=False,
                 v1=v1)


def _query(query: str) -> dict[str, str]:
    """The query parameters meter reads (first value wins); cheaper than ``parse_qs``."""
    if not query:
        return {}
    out: dict[str, str] = {}
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if "%" in item or "+" in item:
            key, value = unquote_plus(key), unquote_plus(value)
        out.setdefault(key, value)
    return out


def _match_azure(method: str, host: str, port: int | None, parts: list[str], q: dict[str, str]) -> Route | None:
    provider = PROVIDER_AZURE
    api_version = q.get("api-version")
    if method == "POST":
        tail = tuple(parts[3:])
        if len(parts) >= 4 and parts[0] == "openai" and parts[1] == "deployments" and tail in _DEPLOYMENT_APIS:
            return Route(
                api=_API_BY_SUFFIX[tail], operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=parts[2], deployment_from_body=False,
            )
        if parts[:2] == ["openai", "v1"] and tuple(parts[2:]) in _API_BY_SUFFIX:
            return Route(
                api=_API_BY_SUFFIX[tuple(parts[2:])], operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version or "v1",
                deployment=None, deployment_from_body=True, v1=True,
            )
        if parts == ["openai", "responses"]:
            return Route(
                api="responses", operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=None, deployment_from_body=True,
            )
        if parts == ["models", "chat", "completions"]:
            return Route(
                api="chat", operation="create", provider=provider,
                server_address=host, server_port=port, api_version=api_version,
                deployment=None, deployment_from_body=True,
            )
    if parts[:1] != ["openai"]:
        return None
    v1 = parts[1:2] == ["v1"]
    rest = parts[2:] if v1 else parts[1:]
    if v1 and api_version is None and (rest == ["responses", "compact"] or rest[:1] == ["files"]):
        api_version = "v1"  # as a create on the v1 path says it
    if method == "GET" and len(rest) == 3 and rest[0] == "files" and rest[2] == "content":
        return _file_content(host, port, provider, api_version, v1)
    return _match_response_id(method, host, port, rest, q, provider, api_version, v1)


def _match_openai(method: str, host: str, port: int | None, parts: list[str], q: dict[str, str]) -> Route | None:
    if parts[:1] != ["v1"]:
        return None
    if method == "POST" and tuple(parts[1:]) in _API_BY_SUFFIX:
        return Route(
            api=_API_BY_SUFFIX[tuple(parts[1:])], operation="create", provider=PROVIDER_OPENAI,
            server_address=host, server_port=port, api_version=None,
            deployment=None, deployment_from_body=True, v1=True,
        )
    rest = parts[1:]
    if method == "GET" and len(rest) == 3 and rest[0] == "files" and rest[2] == "content":
        return _file_content(host, port, PROVIDER_OPENAI, None, True)
    return _match_response_id(method, host, port, rest, q, PROVIDER_OPENAI, None, True)


def _match_response_id(
    method: str,
    host: str,
    port: int | None,
    rest: list[str],
    q: dict[str, str],
    provider: str,
    api_version: str | None,
    v1: bool,
) -> Route | None:
    """``GET responses/{id}`` (retrieve or stream resume), ``POST responses/{id}/cancel`` and ``POST
    responses/compact`` (a compaction: billed tokens, its own id, the model in the request body)."""
    if len(rest) < 2 or rest[0] != "responses":
        return None
    if len(rest) == 2 and rest[1] == "compact" and method == "POST":
        return Route(api="responses", operation="compact", provider=provider, server_address=host,
                     server_port=port, api_version=api_version, deployment=None, deployment_from_body=True,
                     v1=v1)
    response_id = rest[1]
    if len(rest) == 3 and rest[2] == "cancel" and method == "POST":
        operation: Operation = "cancel"
    elif len(rest) == 2 and method == "GET":
        operation = "retrieve"
    else:
        return None
    stream_query = q.get("stream", "false").lower() == "true"
    raw_after = q.get("starting_after")
    # ASCII digits only: "²".isdigit() is true and int("²") raises, which left the call unmetered.
    starting_after = int(raw_after) if raw_after is not None and raw_after.isascii() and raw_after.isdigit() else None
    if operation == "retrieve" and stream_query:
        operation = "resume"
    return Route(
        api="responses", operation=operation, provider=provider,
        server_address=host, server_port=port, api_version=api_version,
        deployment=None, deployment_from_body=False, response_id=response_id,
        stream_query=stream_query, starting_after=starting_after, v1=v1,
    )
