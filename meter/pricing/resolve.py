"""Model-name resolution: which price rows a served model name belongs to.

Azure reports the served model as a dated id (``gpt-4.1-mini-2025-04-14``), a
bare alias (``gpt-4o-mini``, ``gpt-5.5``) or an Azure spelling (``gpt-35-turbo``).
Rows are keyed by one model id each. A dated id falls back to its family only
when the table says snapshots cost the same (``same_price_snapshots``), because
for some families they do not (gpt-4o-2024-05-13 is twice gpt-4o-2024-11-20).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from meter.pricing.model import Alias, ModelInfo

_SNAPSHOT = re.compile(r"^(?P<base>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")
_CACHE_LIMIT = 4096


def normalize_model_name(name: str) -> str:
    """Lower-case, trimmed, with Azure's ``gpt-35`` spelled ``gpt-3.5`` like the rest of the world."""
    name = name.strip().lower()
    if name.startswith("azure/"):
        name = name[len("azure/") :]
    if name.startswith("gpt-35"):
        name = "gpt-3.5" + name[len("gpt-35") :]
    return name


class ModelResolver:
    """Maps names to model ids; built once per book, then read-only except for its cache."""

    def __init__(self, priced_models: Iterable[str], models: Iterable[ModelInfo], aliases: Iterable[Alias]) -> None:
        """``models`` and ``aliases`` are given lowest layer first; later ones win."""
        self._priced = frozenset(priced_models)
        self._snapshot_families: set[str] = set()
        for info in models:
            if info.same_price_snapshots:
                self._snapshot_families.add(info.id)
            else:
                self._snapshot_families.discard(info.id)
        self._aliases: dict[str, list[Alias]] = {}
        for alias in aliases:
            self._aliases.setdefault(alias.name, []).insert(0, alias)
        self._cache: dict[str, str | None] = {}

    @property
    def aliases(self) -> dict[str, list[Alias]]:
        """Aliases by name, highest layer first (for listings)."""
        return self._aliases

    def resolve(self, name: str, day: date) -> str | None:
        """The model id priced for ``name`` on ``day``, or ``None`` when no row applies."""
        cached = self._cache.get(name, "")
        if cached != "":
            return cached
        key = normalize_model_name(name)
        found, dated = self._resolve_normalized(key, day)
        if not dated and len(self._cache) < _CACHE_LIMIT:
            self._cache[name] = found
        return found

    def _resolve_normalized(self, key: str, day: date) -> tuple[str | None, bool]:
        """Returns (model id or None, whether the answer depends on the date)."""
        if key in self._priced:
            return key, False
        aliases = self._aliases.get(key)
        if aliases:
            dated = any(a.effective_from is not None or a.effective_until is not None for a in aliases)
            for alias in aliases:
                if alias.effective_on(day) and alias.model in self._priced:
                    return alias.model, dated
            return None, dated
        match = _SNAPSHOT.match(key)
        if match:
            base = match.group("base")
            if base in self._snapshot_families:
                if base in self._priced:
                    return base, False
                return self._resolve_normalized(base, day)
        return None, False
