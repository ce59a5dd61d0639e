"""The shape of the code, checked: imports flow one way between areas, the core stays pure, sinks load lazily.

The import graph is read from the source with ``ast`` (every ``import``, at module level
or inside a function, except those under ``if TYPE_CHECKING:``), so a lazy import that
only hides a circle at run time is still a circle here. ``from meter import names``
counts as an edge to ``meter.names``; ``from meter import Meter`` as one to the package
``meter`` itself, which re-exports everything, so no module inside ``meter/`` may do it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.reliability.fresh import run_fresh

REPO = Path(__file__).resolve().parents[2]


def _modules(package: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name the file imports (``a.b`` for ``import a.b``, ``a.b.c`` for ``from a.b import c``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from a import b``: the name ``a.b`` (a submodule, or an attribute of the module ``a``).
            names.update(f"{source}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return names


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for name in _imported_names(path, module):
            if name in modules:  # a submodule named directly (or the package itself)
                targets.add(name)
            elif name.rpartition(".")[0] in modules:  # ``from pkg.mod import attr``
                targets.add(name.rpartition(".")[0])
        targets.discard(module)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    """The check can fail: a made-up graph with a circle through three modules is caught."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["meter", "meter/pricing", "meter/dashboards"])
def test_no_import_circle(package: str) -> None:
    graph = _graph(package)
    assert len(graph) > 3, f"found no modules under {package}/"
    assert _cycles(graph) == [], f"import circles in {package}/"


def test_only_the_apps_import_the_package_front() -> None:
    """``meter/__init__.py`` re-exports the library; the library itself never imports it back.

    The apps (demo, proxy, emulator) are the library's users and may use its public API
    like any other user, as long as the front never imports an app.
    """
    graph = _graph("meter")
    offenders = sorted(module for module, targets in graph.items()
                       if module != "meter" and "meter" in targets and not module.startswith("meter.apps."))
    assert offenders == []

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert sorted(m for m in reachable("meter") if m.startswith("meter.apps.")) == []


AREAS: dict[str, tuple[str, ...]] = {
    "base": ("meter._version", "meter.extras", "meter.lifecycle", "meter.textout", "meter.plotting"),
    "core": ("meter.core.*",),
    "pricing": ("meter.pricing.*",),
    "catalogue": ("meter.names",),
    "budgets": ("meter.budgets.*",),
    "ledger": ("meter.ledger.*",),
    "sinks": ("meter.sinks.*", "meter.serve", "meter.otel_setup"),
    "hub": ("meter.hub", "meter.costing", "meter.dedupe", "meter.attribution", "meter.queued", "meter.budget_gate",
            "meter.budget_store", "meter.worker"),
    "adapters": ("meter.adapters.*", "meter.integrations.*"),
    "front": ("meter",),
    "reconcile": ("meter.reconcile.*",),
    "dashboards": ("meter.dashboards.*",),
    "apps": ("meter.apps.*",),
    "cli": ("meter.cli", "meter.cli_help", "meter.__main__", "meter.commands.*"),
}
"""Every module of ``meter/`` in one area: ``pkg.*`` is the package and everything under it, a bare name one module.

base: leaves any area but core and pricing may use (version, extras, thread lifecycle, terminal text, drawing);
catalogue: the names every output shares; front: ``meter/__init__.py``, the public API; cli: the command tree
and the commands of the library areas (the apps carry their own)."""

ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset(),
    "core": frozenset(),
    "pricing": frozenset(),
    "catalogue": frozenset({"core"}),
    "budgets": frozenset({"base", "core", "pricing", "catalogue"}),
    "ledger": frozenset({"core", "catalogue", "pricing", "base"}),
    "sinks": frozenset({"core", "catalogue", "ledger", "base"}),
    "hub": frozenset({"core", "catalogue", "pricing", "budgets", "ledger", "sinks", "base"}),
    "adapters": frozenset({"core", "hub", "budgets", "base"}),
    "front": frozenset({"core", "hub", "adapters", "sinks", "base"}),
    "reconcile": frozenset({"core", "pricing", "ledger", "base"}),
    "dashboards": frozenset({"catalogue", "base"}),
    "apps": frozenset({"front", "adapters", "hub", "core", "catalogue", "pricing", "budgets", "ledger", "reconcile",
                       "base"}),
    "cli": frozenset(AREAS) - {"cli"},
}
"""Area -> the other areas its modules may import (inside an area any import is fine that makes no circle).

The data flows one way (``../shared/design.md``): adapters hand calls to the hub, the hub prices them with
``pricing``, finishes them with the pure core and fans the record out to the sinks and the ledger; the
catalogue names what they all emit; reconcile and dashboards read what the ledger and the metrics hold; the
apps and the commands sit on top. The README's Layout section shows this table, and a test keeps the two equal."""


def _areas_of(module: str) -> list[str]:
    return [area for area, patterns in AREAS.items()
            if any(module == p[:-2] or module.startswith(p[:-1]) if p.endswith(".*") else module == p
                   for p in patterns)]


def _area(module: str) -> str | None:
    """The module's area; ``None`` when it is in none or several (``test_every_module_is_in_exactly_one_area``)."""
    areas = _areas_of(module)
    return areas[0] if len(areas) == 1 else None


def _forbidden(graph: dict[str, set[str]]) -> list[str]:
    """Each import that crosses from one area to another the table does not allow, as ``a -> b (area -> area)``."""
    crossings = []
    for module, targets in sorted(graph.items()):
        source = _area(module)
        for target in sorted(targets):
            area = _area(target)
            if source and area and area != source and area not in ALLOWED[source]:
                crossings.append(f"{module} -> {target} ({source} -> {area})")
    return crossings


def test_every_module_is_in_exactly_one_area() -> None:
    """A new module joins an area on purpose (add it to ``AREAS``), so the layering check cannot miss it."""
    placed = {module: _areas_of(module) for module in _graph("meter")}
    assert {module: areas for module, areas in placed.items() if len(areas) != 1} == {}
    assert {area for areas in placed.values() for area in areas} == set(AREAS), "an area without modules"


def test_the_areas_are_layered() -> None:
    """The table itself flows one way: no area may reach back, through others, to one that imports it."""
    assert set(ALLOWED) == set(AREAS) and all(targets <= set(AREAS) for targets in ALLOWED.values())
    assert _cycles({area: set(targets) for area, targets in ALLOWED.items()}) == []


def test_the_layering_check_finds_a_forbidden_import() -> None:
    """The check can fail: a core module importing the hub is reported, an import within an area or along an
    allowed edge is not."""
    graph = {"meter.core.route": {"meter.hub", "meter.core.record"}, "meter.hub": {"meter.core.route"},
             "meter.core.record": set()}
    assert _forbidden(graph) == ["meter.core.route -> meter.hub (core -> hub)"]
    assert _areas_of("meter.somewhere_new") == [] and _areas_of("meter.commands.ledger") == ["cli"]


def test_imports_cross_only_the_allowed_edges() -> None:
    """Every import in ``meter/`` stays in its area or follows ``ALLOWED``; the failure lists each one that does
    not, with the two areas."""
    assert _forbidden(_graph("meter")) == []


def test_the_readme_layout_shows_the_areas_and_the_allowed_edges() -> None:
    """The README's table of areas (``| area | modules | may import |``) is ``AREAS`` and ``ALLOWED``, area for
    area: its ``core/`` is ``meter.core.*``, its ``names`` ``meter.names``, its ``__init__`` the package."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    modules: dict[str, set[str]] = {}
    edges: dict[str, frozenset[str]] = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in AREAS:
            area, listed, targets = cells
            modules[area] = {"meter" if name == "__init__" else f"meter.{name[:-1]}.*" if name.endswith("/")
                             else f"meter.{name}" for name in re.findall(r"`([^`]+)`", listed)}
            edges[area] = (frozenset(AREAS) - {area} if targets == "every other area"
                           else frozenset() if targets == "nothing of meter"
                           else frozenset(target.strip() for target in targets.split(",")))
    assert modules == {area: set(patterns) for area, patterns in AREAS.items()}
    assert edges == ALLOWED


_PURE_DECOMPRESSORS = {"brotli", "zstandard"}
"""Optional decoders ``meter.core.decode`` loads when a body says ``br`` or ``zstd``: computation, no I/O."""


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    """``meter/core`` is the pure part: no I/O libraries, no sinks, no hub, no pricing."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    outside: dict[str, set[str]] = {}
    for module, path in _modules("meter/core").items():
        for name in _imported_names(path, module):
            top = name.split(".")[0]
            if top in stdlib or top in _PURE_DECOMPRESSORS or name == "meter.core" or name.startswith("meter.core."):
                continue
            outside.setdefault(module, set()).add(name)
    assert outside == {}


def test_otel_off_never_imports_opentelemetry() -> None:
    """A metered call with ``Meter(otel=False)`` runs without OpenTelemetry ever being imported."""
    out = run_fresh("""
        import sys, httpx, meter
        from prometheus_client import CollectorRegistry

        def azure(request):
            return httpx.Response(200, json={"id": "c1", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
                                             "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                                                      "total_tokens": 5}})
        records = []
        m = meter.Meter(otel=False, registry=CollectorRegistry(), on_record=records.append)
        client = httpx.Client(transport=meter.MeteredTransport(httpx.MockTransport(azure), meter=m))
        client.post("https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                    json={"messages": []})
        assert m.flush()  # the record comes on the metering worker
        assert len(records) == 1 and records[0].usage.input_tokens == 3, records
        print(sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry"))
    """)
    assert out.strip() == "[]"


def test_pricing_imports_nothing_else_of_meter() -> None:
    """``meter.pricing`` stands alone (prices as data and the code that reads them): it imports nothing of meter's
    but itself, so the rest of meter can change without touching how a call is priced."""
    outside = {module: sorted(name for name in _imported_names(path, module)
                              if name.startswith("meter") and not name.startswith("meter.pricing"))
               for module, path in _modules("meter/pricing").items()}
    assert {module: names for module, names in outside.items() if names} == {}
    assert len(outside) > 10


def test_one_import_name_nothing_imports_the_old_top_level_packages() -> None:
    """The wheel claims only ``meter``: no module of the project, its tests or benchmarks imports ``pricing`` or
    ``dashboards`` (the repository's folders of those names hold data)."""
    offenders = sorted(f"{module}: {name}" for folder in ("meter", "tests", "benchmarks")
                       for module, path in _modules(folder).items()
                       for name in _imported_names(path, module) if name.split(".")[0] in ("pricing", "dashboards"))
    assert offenders == []


def test_the_readme_lists_every_fault_kind_with_its_meaning() -> None:
    """The fault kinds are a closed set (``meter.core.faults``): the README's table is that set, word for word."""
    from meter.core.faults import FAULTS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = dict(line.split(" | ", 1) for line in readme.splitlines() if line.startswith("| `") and " | " in line
                and line.split(" | ", 1)[0].strip("| `") in FAULTS)
    assert {kind.strip("| `"): text.rstrip(" |") for kind, text in rows.items()} == FAULTS


def test_every_fault_counted_is_a_declared_kind() -> None:
    """Every ``record_fault("...")``/``_fault("...")`` in the code names a kind of ``FaultKind`` (mypy checks the
    calls it can see; this also catches one passed through a variable typed ``str``)."""
    import re

    from meter.core.faults import FAULTS

    used = {m.group(1) for path in (REPO / "meter").rglob("*.py")
            for m in re.finditer(r"(?:record_fault|_fault|_lost)\(\s*\"([a-z_]+)\"", path.read_text(encoding="utf-8"))}
    assert used and used <= set(FAULTS), used - set(FAULTS)
