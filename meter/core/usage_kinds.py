"""The catalogue of usage kinds: everything meter knows about one kind of usage, declared once.

Each field of ``meter.Usage`` is declared with ``kind(...)``: where the service reports it (the key
paths in a Chat Completions and a Responses usage object; streams carry the same objects), what it
is a part of, the OpenTelemetry span attribute, whether it is a Prometheus counter (and its help),
the price-table column its own part is billed at, and whether reports show it. The field's name is
its name everywhere else: the ledger column, the report column, the Prometheus family
``<namespace>_<name>_total``. Every consumer (the usage readers, the subset caps, the ledger schema,
the report, the Prometheus stores, the OTel sink, the dashboards) iterates ``USAGE_KINDS``
(``meter.core.record``), so adding a kind is one field here and the price rows that bill it.

Why metadata on the dataclass fields rather than a table beside it: the record's fields must be
typed attributes (``usage.input_tokens``, checked by mypy), and a table beside them is a second
list to keep in step. Pure: no imports beyond the standard library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]
"""Keys from a usage object to a count: ``("prompt_tokens_details", "cached_tokens")``."""


@dataclass(frozen=True, slots=True)
class UsageKind:
    """One usage kind, as the catalogue declares it (see the module docstring)."""

    name: str
    """The ``Usage`` field; also the ledger and report column and the Prometheus family stem."""
    help: str
    """One line for people: the Prometheus HELP text, the docs."""
    chat: tuple[Path, ...]
    """Where a Chat Completions (and embeddings) usage object holds it; the first path found wins."""
    responses: tuple[Path, ...]
    """Where a Responses usage object holds it."""
    subset_of: tuple[str, ...]
    """The kinds it is a part of (never added to them: capped by them)."""
    otel_attribute: str | None
    """The span attribute (GenAI semantic conventions), or ``None``."""
    prometheus: bool
    """Counted in ``<namespace>_<name>_total``."""
    price_kind: str | None
    """The price-table column its own part is billed at; ``None`` when it is billed inside the kind it is
    a part of (reasoning tokens are output tokens) or is not billed (the total)."""
    report: bool
    """A column of ``meter report``."""
    primary: bool
    """A main count: a usage object without a valid one is unknown usage, never zeros."""
    counted_from: str = "usage"
    """``"usage"``: read from the service's usage object (``chat``, ``responses``); ``"output"``: counted
    from the response's output items (the built-in tools, ``meter.core.tools``)."""


def kind(*, help: str, chat: tuple[Path, ...] = (), responses: tuple[Path, ...] = (),
         subset_of: tuple[str, ...] = (), otel_attribute: str | None = None, prometheus: bool = False,
         price_kind: str | None = None, report: bool = False, primary: bool = False,
         counted_from: str = "usage") -> int:
    """Declare a ``Usage`` field (default 0) with its catalogue entry."""
    spec = {"help": help, "chat": chat, "responses": responses, "subset_of": subset_of,
            "otel_attribute": otel_attribute, "prometheus": prometheus, "price_kind": price_kind,
            "report": report, "primary": primary, "counted_from": counted_from}
    return dataclasses.field(default=0, metadata={"usage_kind": spec})


def kinds_of(cls: type[Any]) -> tuple[UsageKind, ...]:
    """The catalogue: every field of ``cls`` declared with ``kind``, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("usage_kind")
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with kind(...)")
        out.append(UsageKind(name=f.name, **spec))
    return tuple(out)
