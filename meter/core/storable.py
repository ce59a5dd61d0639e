"""Values made storable at the boundary: every text, integer and float a caller or a response controls.

A record's values end up in places that refuse some of what Python holds: SQLite and
PostgreSQL refuse text that is not valid UTF-8 (a lone surrogate, which ``json.loads`` keeps
from ``"\\ud800"``), PostgreSQL refuses NUL in ``text`` and ``\\u0000`` in ``jsonb``, SQLite
refuses integers past 64 bits and PostgreSQL ``integer`` columns past 2^31 - 1, Prometheus'
exposition and OTLP's protobufs cannot encode a lone surrogate, and OTLP's ints are 64-bit.
One such value in a batch stopped the ledger for good and made every later scrape a 500.
So the hub passes what a call's start and end say through here before anyone sees them:

- text: NUL and lone surrogates become U+FFFD (other control characters are kept: every
  store escapes them), and ids, names and labels are cut to ``MAX_TEXT`` characters;
  captured content (prompt and completion text) is not cut here (the sinks cap it);
- integers: outside what their column holds (``MAX_INT32`` for ``attempt`` and
  ``status_code``, PostgreSQL ``integer``; ``MAX_INT64`` otherwise), or negative, they become
  ``None``: unknown, never a clamped number nobody sent;
- floats: not finite (``inf``, ``nan``), they become ``None``.

Each function returns what it changed (field names, empty when nothing), so the hub counts
one ``value_repaired`` fault per call: a repair is never silent. The usual call has nothing
to repair, so each check starts with the cheap test (``isascii`` is O(1) in CPython, ``in``
is a ``memchr``) and only a suspect value takes the regular expression. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meter.core.call import CallEnd
from meter.core.request import RequestInfo
from meter.core.route import Route

MAX_TEXT = 256
"""Characters kept of an id, a name, a label or a tag (deployment, model, api-version, response id, error
code and type, finish reason, Azure header, attribution key and value). Real ones are far shorter: Azure
deployment names hold 64, response ids about 60, api-versions 18."""
MAX_ITEMS = 128
"""Finish reasons kept (one per choice: Azure's ``n`` is at most 128)."""
MAX_INT32 = 2**31 - 1
"""PostgreSQL ``integer``: the ledger's ``attempt``, ``status_code`` and ``server_port`` columns."""
MAX_INT64 = 2**63 - 1
"""SQLite ``INTEGER``, PostgreSQL ``bigint``, an OTLP int attribute."""
REPLACEMENT = "\ufffd"
_INF = float("inf")

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE_IN_JSON = re.compile(rb"\\u[dD][89abAB]|\xed[\xa0-\xbf]")
"""A surrogate in a JSON body: an escape (``json.loads`` keeps a lone one) or raw bytes (decoded with
``surrogatepass``). A valid pair matches too: it only sends the body to the exact check."""


class ValueRepaired(ValueError):
    """Values a caller or a response sent were made storable (the ``value_repaired`` fault)."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(fields)
        super().__init__(f"{', '.join(self.fields)}: made storable (NUL or a lone surrogate replaced, text cut "
                         f"to {MAX_TEXT} characters, or a number out of range dropped); the record says the rest")


def is_storable(value: str, bound: int | None = MAX_TEXT) -> bool:
    """Valid text without NUL, at most ``bound`` characters (``None``: any length)."""
    if bound is not None and len(value) > bound:
        return False
    if value.isascii():
        return "\x00" not in value
    return _UNSTORABLE.search(value) is None


def text(value: str, bound: int | None = MAX_TEXT) -> str:
    """``value`` made storable: NUL and lone surrogates replaced by U+FFFD, cut to ``bound`` characters.

    Code points are cut, never bytes, so the cut never splits a character. A value that is
    not text at all (a bug upstream) becomes its ``str``, so a record is never lost to it.
    """
    if type(value) is not str:
        value = str(value)
    if is_storable(value, bound):
        return value
    if bound is not None:
        value = value[:bound]
    return _UNSTORABLE.sub(REPLACEMENT, value)


def _clean(value: str | None, bound: int | None = MAX_TEXT) -> str | None:
    return None if value is None else text(value, bound)


def _int(value: int | None, top: int) -> int | None:
    return value if value is None or (type(value) is int and 0 <= value <= top) else None


def _finite(value: float | None) -> float | None:
    return value if value is None or abs(value) < _INF else None


def _texts(values: tuple[str, ...] | None, bound: int | None, items: int | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    kept = values if items is None else values[:items]
    return tuple(text(v, bound) for v in kept)


# -- the start of a call ------------------------------------------------------------------------


def _short(values: Iterable[str | None]) -> bool:
    return all(value is None or len(value) <= MAX_TEXT for value in values)


def start_is_clean(route: Route, info: RequestInfo, attributes: Mapping[str, str], attempt: int | None) -> bool:
    """The fast test of the start's facts (``True``: nothing to repair; ``False``: look closer).

    The texts are tested as one string: one ASCII and one NUL test instead of one per value, and
    one length test while they are short together (``None`` joins as ``""``: formatting ``None``
    itself costs as much as the rest).
    """
    joined = (f"{route.deployment or ''}{route.api_version or ''}{route.response_id or ''}"
              f"{route.server_address or ''}{info.model or ''}")
    if not (joined.isascii() and "\x00" not in joined):
        return False
    if len(joined) > MAX_TEXT and not _short((route.deployment, route.api_version, route.response_id,
                                               route.server_address, info.model)):
        return False
    for key, value in attributes.items():  # usually none or a few: a join would cost more
        if not (len(key) <= MAX_TEXT and len(value) <= MAX_TEXT and key.isascii() and value.isascii()
                and "\x00" not in key and "\x00" not in value):
            return False
    return attempt is None or 0 <= attempt <= MAX_INT32


def _cleaned_texts(holder: object, fields: tuple[str, ...]) -> dict[str, Any]:
    """The text fields of ``holder`` that cleaning changes, with their clean values (in ``fields`` order)."""
    changes: dict[str, Any] = {}
    for name in fields:
        value = getattr(holder, name)
        clean = _clean(value)
        if clean != value:
            changes[name] = clean
    return changes


def clean_start(route: Route, info: RequestInfo, attributes: dict[str, str], attempt: int | None
                ) -> tuple[Route, RequestInfo, dict[str, str], int | None, tuple[str, ...]]:
    """The start's facts made storable, and the names of those that changed (empty: all as they were)."""
    if start_is_clean(route, info, attributes, attempt):
        return route, info, attributes, attempt, ()
    route_changes = _cleaned_texts(route, ("deployment", "api_version", "response_id", "server_address"))
    changed: list[str] = list(route_changes)
    if route_changes:
        route = dataclasses.replace(route, **route_changes)
    model = _clean(info.model)
    if model != info.model:
        info = dataclasses.replace(info, model=model)
        changed.append("request_model")
    clean_attributes = {text(k): text(v) for k, v in attributes.items()}
    if clean_attributes != attributes:  # keys that collide once cleaned: the later one wins
        attributes = clean_attributes
        changed.append("attributes")
    clean_attempt = _int(attempt, MAX_INT32)
    if clean_attempt != attempt:
        attempt = clean_attempt
        changed.append("attempt")
    return route, info, attributes, attempt, tuple(changed)


def may_hold_surrogates(body: bytes | None) -> bool:
    """Could this JSON body decode to text with a lone surrogate? (``False`` is certain.)"""
    return body is not None and _SURROGATE_IN_JSON.search(body) is not None


def clean_tree(value: Any) -> tuple[Any, bool]:
    """A parsed JSON value with every string (keys too) made valid text, not cut: the captured prompt.

    Returns the value itself when nothing changed, else a cleaned copy (the caller's object is
    never changed), and whether anything changed.
    """
    if isinstance(value, str):
        clean = text(value, None)
        return clean, clean != value
    if isinstance(value, list):
        items = [clean_tree(v) for v in value]
        if not any(changed for _, changed in items):
            return value, False
        return [v for v, _ in items], True
    if isinstance(value, dict):
        pairs = [(clean_tree(k), clean_tree(v)) for k, v in value.items()]
        if not any(kc or vc for (_, kc), (_, vc) in pairs):
            return value, False
        return {k: v for (k, _), (v, _) in pairs}, True
    return value, False


# -- the end of a call ----------------------------------------------------------------------------


def end_is_clean(end: CallEnd) -> bool:
    """The fast test of the end's facts (``True``: nothing to repair; ``False``: look closer).

    As ``start_is_clean``: the texts tested as one string, the rest one comparison each. It runs
    once per call, between the HTTP stack's own work: every step counts (the end is unpacked
    once, since each named-tuple field read is a call of its own).
    """
    (status, _outcome, error_type, error_code, _usage, _source, reasons, _duration, _ttft, azure, model,
     response_id, _stream, _provisional, texts, _tier, _containers, _seconds, _images,
     _batch_model) = end
    joined = (f"{model or ''}{response_id or ''}{error_type or ''}{error_code or ''}{azure.region or ''}"
              f"{azure.apim_request_id or ''}{azure.request_id or ''}{azure.client_request_id or ''}"
              f"{azure.deployment_name or ''}{azure.served_model or ''}{''.join(reasons) if reasons else ''}")
    if not (joined.isascii() and "\x00" not in joined):
        return False
    if len(joined) > MAX_TEXT and not _short((model, response_id, error_type, error_code, azure.region,
                                               azure.apim_request_id, azure.request_id, azure.client_request_id,
                                               azure.deployment_name, azure.served_model, *(reasons or ()))):
        return False
    if reasons is not None and len(reasons) > MAX_ITEMS:
        return False
    if status is not None and not 0 <= status <= MAX_INT32:
        return False
    # Non-negative ints (``headers._header_int``): their OR is in range exactly when each one is.
    if not 0 <= ((azure.ratelimit_remaining_tokens or 0) | (azure.ratelimit_remaining_requests or 0)
                 | (azure.ratelimit_limit_tokens or 0) | (azure.ratelimit_limit_requests or 0)) <= MAX_INT64:
        return False
    retry = azure.retry_after_s
    if retry is not None and retry - retry != 0.0:  # inf - inf and nan - nan are nan; any finite x - x is 0
        return False
    if texts is not None:
        for value in texts:
            if "\x00" in value or not (value.isascii() or _UNSTORABLE.search(value) is None):
                return False
    return True


_AZURE_TEXTS = ("region", "apim_request_id", "request_id", "client_request_id", "deployment_name", "served_model")
_AZURE_INTS = ("ratelimit_remaining_tokens", "ratelimit_remaining_requests", "ratelimit_limit_tokens",
               "ratelimit_limit_requests")


def clean_end(end: CallEnd) -> tuple[CallEnd, tuple[str, ...]]:
    """The end's facts made storable, and the names of those that changed (empty: the end as it was).

    The Azure headers object may be shared (one empty instance for every call without a
    response): a changed one is a copy, never changed in place.
    """
    if end_is_clean(end):
        return end, ()
    changes = _cleaned_texts(end, ("response_model", "response_id", "error_type", "error_code"))
    changed: list[str] = list(changes)
    reasons = _texts(end.finish_reasons, MAX_TEXT, MAX_ITEMS)
    if reasons != end.finish_reasons:
        changes["finish_reasons"] = reasons
        changed.append("finish_reasons")
    status = _int(end.status_code, MAX_INT32)
    if status != end.status_code:
        changes["status_code"] = status
        changed.append("status_code")
    output = _texts(end.output_text, None, None)
    if output != end.output_text:
        changes["output_text"] = output
        changed.append("output_text")
    azure = end.azure
    azure_changes = _cleaned_texts(azure, _AZURE_TEXTS)
    for name in _AZURE_INTS:
        number = getattr(azure, name)
        if _int(number, MAX_INT64) != number:
            azure_changes[name] = None
    if _finite(azure.retry_after_s) is None and azure.retry_after_s is not None:
        azure_changes["retry_after_s"] = None
    if azure_changes:
        changes["azure"] = dataclasses.replace(azure, **azure_changes)
        changed.extend(f"azure.{name}" for name in azure_changes)
    return (end._replace(**changes) if changes else end), tuple(changed)
