"""Attribution: ``with meter.attribute(team=..., feature=...)`` tags the calls made inside.

A ``contextvars.ContextVar`` carries the tags, so they follow the code into
threads started with ``contextvars.copy_context()``, into asyncio tasks (which
copy the context when created) and through ``await``. Nested blocks merge,
inner values win.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})
_current: ContextVar[Mapping[str, str]] = ContextVar("meter_attribution", default=_EMPTY)


@contextmanager
def attribute(**tags: object) -> Iterator[None]:
    """Attach ``key=value`` tags to the records of every call made inside the block."""
    merged = dict(_current.get())
    merged.update({key: str(value) for key, value in tags.items()})
    token = _current.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> dict[str, str]:
    """The tags in force here (a copy: records own their attributes)."""
    tags = _current.get()
    return dict(tags) if tags else {}
