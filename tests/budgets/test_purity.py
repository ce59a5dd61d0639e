"""``meter/budgets`` is pure: only the loader reads (the budgets file); nothing opens sockets, databases or
processes, or reads the environment. (What it may import of meter: ``tests/meter/test_structure.py``.)"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "meter" / "budgets"
_IO_MODULES = {"socket", "ssl", "http", "urllib", "sqlite3", "subprocess", "asyncio", "selectors", "shutil",
               "tempfile", "psycopg", "httpx", "httpx2", "requests", "os"}
_READERS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "environ", "getenv"}


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _IO_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _IO_MODULES:
            found.append(f"from {node.module} import")
        elif isinstance(node, ast.Attribute) and node.attr in _READERS:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and node.id in _READERS:
            found.append(node.id)
    return found


def test_only_the_loader_reads_and_nothing_does_other_io() -> None:
    offences = {path.name: _offences(path) for path in sorted(PACKAGE.glob("*.py"))}
    loader = offences.pop("loader.py")
    assert set(loader) <= {".open", "import os"}, loader  # os: only ``os.PathLike`` for the argument's type
    assert {name: found for name, found in offences.items() if found} == {}
    assert len(offences) >= 8


def test_the_check_finds_io(tmp_path: Path) -> None:
    """The check can fail: a module that opens a file or a socket is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom pathlib import Path\nPath('x').read_text()\nopen('y')\n", encoding="utf-8")
    assert _offences(sample) == ["import socket", ".read_text", "open"]
