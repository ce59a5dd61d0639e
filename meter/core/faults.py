"""The metering faults: a closed set, declared once, each with what it means for the user.

A fault is something that went wrong inside metering while the caller's call itself went on
untouched: it is counted (``Meter.faults``, ``<ns>_metering_faults_total{kind=...}``), logged once
per kind, and never raised. ``FaultKind`` is the type every place that counts one uses, so a kind
that is not declared here is a type error; ``FAULTS`` is what the README's table and the test that
checks it iterate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Literal, get_args

FaultKind = Literal[
    "begin", "rewrite", "sink_start", "sink", "subscriber", "dedupe", "pricing", "record",
    "parse", "content_encoding", "response_headers", "decoded_too_large", "body_too_large", "event_too_large",
    "attach", "value_repaired", "usage_subset_capped", "budget", "budget_db_down", "batch_line",
    "ledger_dropped", "ledger_after_close", "ledger_repaired", "ledger_rejected",
    "litellm_instrument", "metering_inline",
]

FAULTS: dict[FaultKind, str] = {
    "begin": "the request could not be recognised or started: the call went through unmetered",
    "rewrite": "the request body could not be rewritten (stream usage injection): it went out as sent",
    "sink_start": "a sink failed when the call started (the call and the other sinks went on)",
    "sink": "a sink failed on the finished record (the other sinks and subscribers still got it)",
    "subscriber": "an on_record subscriber raised (the others still got the record)",
    "dedupe": "the Responses id check failed: the usage was counted as reported",
    "pricing": "the call could not be priced: its cost is unknown (never 0)",
    "record": "the record could not be built: the call has no record",
    "parse": "the response body or an event could not be read: usage unknown or estimated",
    "content_encoding": "the response's content encoding could not be decoded for reading",
    "response_headers": "the response headers could not be read",
    "decoded_too_large": "the decoded response passed its bound (a decompression bomb): reading stopped",
    "body_too_large": "a JSON body passed its bound: its usage was not read",
    "event_too_large": "one SSE event passed its bound: its head and tail were kept and read",
    "attach": "a response could not be attached to its call",
    "value_repaired": "a value a caller or a response sent could not be stored as it was (NUL, a lone "
                      "surrogate, too long, an integer out of range) and was made storable",
    "usage_subset_capped": "a usage subset exceeded its total (cached above input) and was capped",
    "budget": "a budget could not be checked or settled: the call went through, its hold (if any) at its worst case",
    "budget_db_down": "a hard budget's shared store (the ledger's database) could not be reached and the budget "
                      "says on_db_down = \"open\": the call went through, held locally and written when it is back",
    "batch_line": "lines of a Batch output file could not be read (not JSON, a success without usage, "
                  "counts that are not counts): left out of the sum, the other lines still summed (once a file)",
    "ledger_dropped": "a record was not written to the ledger: its queue was full, or close timed out",
    "ledger_after_close": "a call finished after Meter.close(): its ledger row was not written",
    "ledger_repaired": "the database refused a row as it was and took it with its values made storable",
    "ledger_rejected": "the database refused a row even repaired: it was set aside",
    "litellm_instrument": "LiteLLM's client could not be metered: its calls went unmetered",
    "metering_inline": "the metering worker was too far behind when a call began (Meter.metering = \"worker\"): "
                       "the call was metered on its own thread instead, nothing lost",
}
"""Every fault kind and what it means (``FAULTS`` keys are ``FaultKind``'s values, a test checks)."""

if set(FAULTS) != set(get_args(FaultKind)):  # pragma: no cover - a declaration error, caught at import
    raise RuntimeError("meter.core.faults: FAULTS and FaultKind disagree")


FaultReport = Callable[[FaultKind, BaseException], None]
"""Where a caught fault goes: ``Meter.record_fault`` (count, log once per kind, tell the sinks)."""


class Guard:
    """The one way meter keeps its own errors from the caller: ``with guard:`` around metering work.

    An ``Exception`` raised in the block is handed to ``report`` as one fault of ``kind`` and
    swallowed, and the code after the block runs (so a value the block was to set keeps the
    default it had before it). ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``, a task's
    cancellation) is not a metering fault and goes on up. A plain class, built once per kind and
    reused, because it runs several times a call: about 0.13 µs a block, where a bare
    ``try``/``except`` costs nothing until it catches.
    """

    __slots__ = ("kind", "report")

    def __init__(self, kind: FaultKind, report: FaultReport) -> None:
        self.kind = kind
        self.report = report

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if isinstance(exc, Exception):
            self.report(self.kind, exc)
            return True
        return False


def guards(report: FaultReport) -> Mapping[FaultKind, Guard]:
    """One ``Guard`` per fault kind, all reporting to ``report``."""
    return {kind: Guard(kind, report) for kind in FAULTS}
