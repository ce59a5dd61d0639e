"""One guard keeps meter's own errors from the caller (issue 21): what it catches, and that it is the one way.

``meter.core.faults.Guard`` counts an ``Exception`` as one fault of its kind and swallows it; a
``BaseException`` (interrupt, exit, cancellation) goes on. The source scan below holds the code to it:
a handler that counts a fault by hand is a guard written twice.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import meter
from meter.core.faults import FAULTS, FaultKind, Guard, guards

PACKAGE = Path(meter.__file__).resolve().parent

HAND_WRITTEN_ALLOWED = {
    ("core/call.py", "_look"): "a fault while reading a chunk also stops reading the body: a recovery, not a guard",
    ("core/call.py", "on_response"): "an encoding meter cannot undo stops reading the body: a decision, not a guard",
    ("integrations/litellm.py", "create_client"): "the meter to count on is looked up only when there is a fault",
}
"""Handlers that count a fault by hand, and why each cannot be a ``with guard[...]:`` block."""


def _boom() -> str:
    raise ValueError("boom")


def test_an_exception_is_counted_as_its_kind_and_the_code_after_the_block_runs() -> None:
    seen: list[tuple[FaultKind, BaseException]] = []
    guard = Guard("parse", lambda kind, exc: seen.append((kind, exc)))
    value = "default"
    with guard:
        value = _boom()
    after = "ran"
    assert value == "default" and after == "ran"
    assert [(kind, type(exc).__name__) for kind, exc in seen] == [("parse", "ValueError")]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), asyncio.CancelledError(), GeneratorExit()])
def test_what_is_not_a_metering_fault_goes_on_up(exc: BaseException) -> None:
    seen: list[FaultKind] = []
    guard = Guard("sink", lambda kind, _exc: seen.append(kind))
    with pytest.raises(type(exc)), guard:
        raise exc
    assert seen == []


def test_a_block_that_raises_nothing_reports_nothing() -> None:
    seen: list[FaultKind] = []
    with Guard("sink", lambda kind, _exc: seen.append(kind)):
        pass
    assert seen == []


def test_there_is_one_guard_per_declared_kind() -> None:
    made = guards(lambda kind, exc: None)
    assert set(made) == set(FAULTS)
    assert all(made[kind].kind == kind for kind in made)


def test_a_meter_counts_a_sink_that_raises_once_per_call_and_logs_the_kind_once(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def start(self, start: meter.CallStart) -> None:
            raise RuntimeError("start")

        def finish(self, record: meter.CallRecord, state: None) -> None:
            raise RuntimeError("finish")

        def fault(self, kind: str) -> None:
            pass

    import httpx2

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "x", "model": "gpt-4o", "usage": {
            "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

    records: list[meter.CallRecord] = []
    m = meter.Meter(otel=False, prometheus=False, price_book=False, sinks=[Broken()], on_record=records.append)
    with httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(answer), meter=m)) as client:
        for _ in range(3):
            response = client.post("https://r.openai.azure.com/openai/deployments/d/chat/completions"
                                   "?api-version=2024-10-21", json={"messages": []})
            assert response.status_code == 200
    assert m.flush(10)  # the records and faults come on the metering worker
    assert len(records) == 3  # the other consumers still got every record
    assert m.faults == {"sink_start": 3, "sink": 3}
    logged = [r.getMessage() for r in caplog.records if "metering fault" in r.getMessage()]
    assert len(logged) == 2


def _counts_a_fault(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("record_fault", "_fault", "fault"):
                return True
    return False


class _Handlers(ast.NodeVisitor):
    """Each handler that counts a fault, by the innermost function it is written in."""

    def __init__(self, relative: str) -> None:
        self.relative = relative
        self.functions: list[str] = []
        self.found: set[tuple[str, str]] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if _counts_a_fault(node):
            self.found.add((self.relative, self.functions[-1] if self.functions else "<module>"))
        self.generic_visit(node)


def test_no_handler_counts_a_fault_by_hand_outside_the_named_exceptions() -> None:
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        handlers = _Handlers(path.relative_to(PACKAGE).as_posix())
        handlers.visit(ast.parse(path.read_text(encoding="utf-8")))
        found |= handlers.found
    assert found <= set(HAND_WRITTEN_ALLOWED), sorted(found - set(HAND_WRITTEN_ALLOWED))
    assert found == set(HAND_WRITTEN_ALLOWED), "an allowed exception no longer exists: drop it"


def test_a_dropped_meter_is_freed_at_once_not_left_for_the_cyclic_collector(tmp_path: Path) -> None:
    """The guards report to a counter of their own: a guard holding ``Meter.record_fault`` made every
    Meter a reference cycle (found as cyclic garbage by tests/reliability/test_no_cycles.py)."""
    import gc
    import weakref

    from prometheus_client import CollectorRegistry

    gc.collect()
    gc.disable()
    try:
        for options in ({"otel": False, "prometheus": False}, {"otel": False, "registry": CollectorRegistry()},
                        {"otel": False, "prometheus": False, "ledger": str(tmp_path / "l.sqlite")}):
            m = meter.Meter(**options)  # type: ignore[arg-type]
            m.close()
            alive = weakref.ref(m)
            del m
            assert alive() is None, options
    finally:
        gc.enable()
