"""A call's worst-case cost, worked out from its request before it is sent.

What a call can cost at most: its input tokens (estimated from the request text,
``meter.core.request.estimate_input_tokens``: about 4 characters a token), the most output it may
produce (the request's ``max_output_tokens`` / ``max_completion_tokens`` / ``max_tokens``, times
``n`` choices; else the model's maximum output from ``MODEL_MAX_OUTPUT_TOKENS``; else
``DEFAULT_MAX_OUTPUT_TOKENS``), and the fee-bearing built-in tools it allows (web search and file
search per call, code interpreter per session: one each, or ``max_tool_calls`` each when the request
sets more), priced by a ``meter.pricing.PriceBook`` like any finished call.

What it cannot price it says (``WorstCase.unpriced``, with the reason), never as $0: the budget's
rule for unpriced calls then applies (``docs/budgets.md``). Pure: no I/O.

Known limits of a bound read from the request alone (``docs/budgets.md``, "The bound"): input
tokens are an estimate (text that tokenises denser than 4 characters a token, images, files, tool
definitions and a ``previous_response_id`` conversation are not counted), and a model may call a
tool more often than once when ``max_tool_calls`` does not cap it. The reservation then settles at
the real cost, so the difference is counted, not lost.

Image and audio calls are bounded by ``meter.budgets.media`` (n images at their price, image tokens by
quality and size, characters to speak) and priced here the same way. A call whose spend happened at
Azure before meter sees it (a Batch output download; retrieving, resuming or cancelling a response)
has a worst case of 0 marked ``spent_before``: refusing it would save nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from meter.budgets.media import MAX_COUNT, MediaBound, bound_of
from meter.budgets.media import count as _count
from meter.budgets.unit_prices import unit_prices
from meter.core.record import Usage
from meter.core.request import estimate_input_tokens
from meter.pricing import Cost, PriceBook

DEFAULT_MAX_OUTPUT_TOKENS = 131_072
"""Output tokens assumed for a model not in ``MODEL_MAX_OUTPUT_TOKENS`` when the request sets no limit:
the largest maximum output of any model in the table (gpt-oss-120b), so no listed model can exceed it."""

MODEL_MAX_OUTPUT_TOKENS: Mapping[str, int] = MappingProxyType({
    # Source: Microsoft Learn, "Azure OpenAI in Microsoft Foundry Models", the "Max output tokens" /
    # "Max request ... Output" columns (MicrosoftDocs/azure-ai-docs,
    # articles/ai-foundry/openai/includes/models-azure-direct-openai.md, ms.date 10/17/2025).
    "gpt-5.1": 128_000,
    "gpt-5.1-chat": 16_384,
    "gpt-5.1-codex": 128_000,
    "gpt-5.1-codex-mini": 128_000,
    "gpt-5": 128_000,
    "gpt-5-mini": 128_000,
    "gpt-5-nano": 128_000,
    "gpt-5-chat": 16_384,
    "gpt-5-codex": 128_000,
    "gpt-5-pro": 128_000,
    "gpt-oss-120b": 131_072,
    "gpt-oss-20b": 131_072,
    "gpt-4.1": 32_768,
    "gpt-4.1-mini": 32_768,
    "gpt-4.1-nano": 32_768,
    "computer-use-preview": 1_024,
    "codex-mini": 100_000,
    "o3-pro": 100_000,
    "o4-mini": 100_000,
    "o3": 100_000,
    "o3-mini": 100_000,
    "o1": 100_000,
    "o1-preview": 32_768,
    "o1-mini": 65_536,
    "gpt-4o": 16_384,                 # 2024-11-20 and 2024-08-06
    "gpt-4o-2024-05-13": 4_096,
    "gpt-4o-mini": 16_384,
    "gpt-4-turbo": 4_096,             # gpt-4 turbo-2024-04-09
    "gpt-35-turbo": 4_096,
    "gpt-3.5-turbo": 4_096,
    "gpt-4o-audio-preview": 16_384,
    "gpt-4o-mini-audio-preview": 16_384,
    "gpt-4o-realtime-preview": 4_096,
    "gpt-4o-mini-realtime-preview": 4_096,
    "gpt-realtime": 4_096,
    "gpt-realtime-mini": 4_096,
    "gpt-audio": 4_096,
    "gpt-audio-mini": 4_096,
    # Embeddings produce no output tokens.
    "text-embedding-3-small": 0,
    "text-embedding-3-large": 0,
    "text-embedding-ada-002": 0,
})
"""The most output tokens a model can produce in one call (reasoning tokens included), by model id. A
dated id (``gpt-4o-mini-2024-07-18``) takes the entry of its longest listed prefix that ends at a
``-``; a name that is no entry and extends none (``gpt-5.4-mini``) is unknown."""

_FEE_TOOLS: Mapping[str, str] = MappingProxyType({
    "web_search": "web_search_calls", "web_search_preview": "web_search_calls",
    "web_search_preview_2025_03_11": "web_search_calls", "web_search_2025_08_26": "web_search_calls",
    "file_search": "file_search_calls", "code_interpreter": "code_interpreter_sessions",
})
"""A Responses tool type whose use is billed apart from tokens -> the usage kind that counts it."""
_UNESTIMATED_TOOLS = frozenset({"image_generation"})
"""Tools billed in a way the request does not bound (the image tool's image tokens)."""
_SEARCH_MODELS = ("-search-preview", "-search-api")
_MEDIA_APIS = frozenset({"images", "speech", "transcriptions", "translations"})
_SPENT_BEFORE_OPERATIONS = frozenset({"retrieve", "resume", "cancel"})
_NO_UNITS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WorstCase:
    """The most a call can cost, as far as its request tells.

    ``usd`` is the priced part; ``unpriced`` says what could not be priced (``None``: ``usd`` is the
    whole worst case). ``output_from`` says where the output bound came from. ``spent_before``: the
    call's cost was spent at Azure before the call (a Batch output download, a response retrieved):
    its worst case is 0 and no budget refuses it (``meter.budget_gate``).
    """

    usd: Decimal
    unpriced: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    output_from: str = ""
    tool_calls: Mapping[str, int] = field(default_factory=dict)
    units: Mapping[str, int] = field(default_factory=dict)
    """What the call is bounded at in units, by price column (``{"image_hd": 2}``, ``{"speech_characters": 90}``)."""
    spent_before: bool = False
    pricing: tuple[PriceBook, Usage | None, str | None, str | None, str | None, datetime | None] | None = field(
        default=None, repr=False, compare=False)
    """What ``cost`` is priced from: the book, the usage, the model, deployment type, region and time."""

    @property
    def priced(self) -> bool:
        return self.unpriced is None

    @property
    def cost(self) -> Cost | None:
        """The worst case as ``PriceBook.cost_of`` prices it (its rows, unit prices and reason), worked out when
        asked: the reservation needs only ``usd``. ``None`` for a worst case that was not priced."""
        if self.pricing is None:
            return None
        book, usage, model, deployment_type, region, at = self.pricing
        return book.cost_of(usage, model=model, deployment_type=deployment_type, region=region, at=at,
                            estimated=True, units=dict(self.units) or None)


def max_output_tokens_of(model: str | None) -> int | None:
    """The model's maximum output from ``MODEL_MAX_OUTPUT_TOKENS`` (exact id, else the longest listed
    prefix ending at a ``-``: a dated or suffixed id), or ``None`` when it is not listed."""
    if not model:
        return None
    name = model.lower()
    known = MODEL_MAX_OUTPUT_TOKENS.get(name)
    if known is not None:
        return known
    cut = name.rfind("-")
    while cut > 0:
        known = MODEL_MAX_OUTPUT_TOKENS.get(name[:cut])
        if known is not None:
            return known
        cut = name.rfind("-", 0, cut)
    return None


def _output_bound(body: Mapping[str, Any], api: str, model_max: int | None,
                  default_max: int) -> tuple[int, str]:
    """The output tokens the call may produce, and where that bound came from."""
    if api == "embeddings":
        return 0, "none (embeddings)"
    choices = (_count(body.get("n")) or 1) if api == "chat" else 1
    fields = ("max_output_tokens",) if api == "responses" else ("max_completion_tokens", "max_tokens")
    asked = [(count, name) for name in fields if (count := _count(body.get(name))) is not None]
    if asked:
        count, name = max(asked)
        return min(count * choices, MAX_COUNT), name
    if model_max is not None:
        return min(model_max * choices, MAX_COUNT), "model maximum"
    return min(default_max * choices, MAX_COUNT), "default"


def _tool_calls(body: Mapping[str, Any], api: str, model: str | None) -> tuple[dict[str, int], str | None]:
    """Fee-bearing tool calls the request allows, by usage kind; and a tool it allows that cannot be bounded."""
    calls: dict[str, int] = {}
    if api == "chat":
        if "web_search_options" in body or (model is not None and any(s in model for s in _SEARCH_MODELS)):
            calls["web_search_calls"] = 1
        return calls, None
    if api != "responses" or body.get("tool_choice") == "none":
        return calls, None
    tools = body.get("tools")
    if not isinstance(tools, list):
        return calls, None
    each = max(1, _count(body.get("max_tool_calls")) or 1)
    unbounded = None
    for tool in tools[:1000]:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            continue
        if kind in _FEE_TOOLS:
            calls[_FEE_TOOLS[kind]] = min(calls.get(_FEE_TOOLS[kind], 0) + each, MAX_COUNT)
        elif kind in _UNESTIMATED_TOOLS:
            unbounded = f"the {kind} tool's cost is not bounded by the request"
    return calls, unbounded


def worst_case(body: Mapping[str, Any] | None, *, api: str, model: str | None, price_book: PriceBook,
               deployment_type: str | None = None, region: str | None = None, at: datetime | None = None,
               default_max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS, operation: str = "create",
               requested_model: str | None = None) -> WorstCase:
    """The most the call described by ``body`` (the parsed request JSON) can cost.

    ``api`` is the record's ``api`` (``chat``, ``responses``, ``embeddings``, ``images``, ``speech``,
    ``transcriptions``, ``translations``, ``batch_output``) and ``operation`` the route's (``create``;
    ``retrieve``, ``resume``, ``cancel`` of a response). ``model`` is the name meter prices the call as
    (the mapped model, else the deployment's, else the body's); ``requested_model`` the name the request
    gave, which tells how an image or audio call is billed when ``model`` is a deployment's name;
    ``deployment_type`` the type it would be billed at: the integration passes the tier's type
    (``GlobalPriority`` ...) when the request asks for one.
    """
    if api == "batch_output" or operation in _SPENT_BEFORE_OPERATIONS:
        what = "a Batch output download" if api == "batch_output" else f"a response's {operation}"
        return WorstCase(Decimal(0), output_from=f"spent before the call ({what})", spent_before=True)
    resolved = unit_prices(price_book).resolve(model, at) if model else None
    if api in _MEDIA_APIS:
        parsed_media = body if body is None or isinstance(body, dict) else dict(body)
        return _priced(bound_of(parsed_media, api=api, models=(resolved, model, requested_model)), model,
                       price_book, deployment_type, region, at)
    if api not in ("chat", "responses", "embeddings"):
        return WorstCase(Decimal(0), f"no worst-case rule for {api} calls")
    request = body if body is not None else {}
    model_max = max_output_tokens_of(resolved) if resolved else None
    if model_max is None:
        model_max = max_output_tokens_of(model)
    parsed = request if isinstance(request, dict) else dict(request)
    input_tokens = min(estimate_input_tokens(parsed) if parsed else 0, MAX_COUNT)
    output_tokens, output_from = _output_bound(request, api, model_max, default_max_output_tokens)
    calls, unbounded = _tool_calls(request, api, model)
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens,
                  **calls)
    bound = MediaBound(usage=usage, unpriced=unbounded, input_tokens=input_tokens, output_tokens=output_tokens,
                       output_from=output_from)
    return _priced(bound, model, price_book, deployment_type, region, at, calls)


def _priced(bound: MediaBound, model: str | None, price_book: PriceBook, deployment_type: str | None,
            region: str | None, at: datetime | None, calls: Mapping[str, int] | None = None) -> WorstCase:
    """The bound priced like a finished call (the same ``PriceBook``, its unit prices kept per key by
    ``meter.budgets.unit_prices``): the priced part, and every reason a part is not priced."""
    units = MappingProxyType(dict(bound.units)) if bound.units else _NO_UNITS
    priced, reason = unit_prices(price_book).priced(bound.usage, units, model=model, deployment_type=deployment_type,
                                                    region=region, at=at)
    if bound.unpriced is not None:
        reason = bound.unpriced if reason is None else f"{reason}; {bound.unpriced}"
    return WorstCase(usd=priced, unpriced=reason, input_tokens=bound.input_tokens, output_tokens=bound.output_tokens,
                     output_from=bound.output_from, tool_calls=MappingProxyType(calls) if calls else _NO_UNITS,
                     units=units, pricing=(price_book, bound.usage, model, deployment_type, region, at))
