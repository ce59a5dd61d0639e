"""Optional parts need optional packages: say which extra to install, in one line.

``require("demo", "openai", "starlette")`` raises ``MissingExtra`` (an ``ImportError``)
naming the extra and the missing modules when any is not installed; the ``meter``
command prints its message alone and exits 2, never a traceback. Modules are looked
up, not imported, so the check costs nothing when they are there.
"""

from __future__ import annotations

import importlib.util

EXTRAS = {
    "demo": ("openai", "starlette", "uvicorn", "opentelemetry.sdk"),
    "emulator": ("starlette", "uvicorn"),
    "proxy": ("uvicorn", "httptools"),
    "otlp": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),
    "litellm": ("litellm",),
    "langchain": ("langchain_openai",),
    "plots": ("matplotlib",),
    "postgres": ("psycopg",),
}
"""What each extra of ``pyproject.toml`` brings that meter imports (a test checks the two agree)."""

class MissingExtra(ImportError):
    """An optional part was used without its extra installed."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a broken install
        return False


def require(part: str, what: str | None = None) -> None:
    """Raise ``MissingExtra`` unless every module ``part`` needs is installed; ``what`` names the user's action."""
    missing = [module for module in EXTRAS[part] if not _installed(module)]
    if missing:
        raise MissingExtra(f"{what or part} needs the [{part}] extra: pip install 'meter[{part}]' "
                           f"(missing: {', '.join(missing)})")
