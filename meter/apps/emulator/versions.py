"""Which ``api-version`` values the classic paths accept, and what they allow.

Classic paths require the parameter (Azure answers 404 "Resource not found"
without it). ``stream_options`` only exists from the 2024-08 previews on; older
versions reject it as an unrecognized argument. The v1 paths need no version.
"""

from __future__ import annotations

import re

_DATED = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:-preview)?$")
_UNDATED = frozenset({"preview", "latest", "v1"})
FIRST_WITH_STREAM_OPTIONS = "2024-08-01"


def is_valid(version: str) -> bool:
    return version in _UNDATED or _DATED.match(version) is not None


def accepts_stream_options(version: str | None) -> bool:
    """``None`` means a v1 path, which always accepts it."""
    if version is None or version in _UNDATED:
        return True
    match = _DATED.match(version)
    return match is not None and match.group(1) >= FIRST_WITH_STREAM_OPTIONS
