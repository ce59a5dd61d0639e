"""The price table ``meter reconcile --write-prices`` writes: every price the export billed differently, whole.

A ``[[price]]`` entry alone is no table (``meter pricing validate`` wants its ``[table]`` header),
so the entries of the price findings are written with one: a version and a publication day,
USD, each entry with its source. Entries for the same key (model, deployment type, region) from
several resources or days are merged: the earliest day, and for a kind billed at two prices the
first (the other is named in a comment and in the notes returned). Pure: the caller writes the text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from meter.reconcile.explain import Finding, PriceEntry
from meter.textout import visible


def price_table(findings: Iterable[Finding], exports: Iterable[str], today: date) -> tuple[str, int, list[str]]:
    """The table's text, the number of its entries, and what was left out (two prices for one key and kind)."""
    merged: dict[tuple[str, str, str], PriceEntry] = {}
    sources: dict[tuple[str, str, str], list[str]] = {}
    notes: list[str] = []
    for finding in findings:
        entry = finding.entry
        if finding.kind != "price" or entry is None:
            continue
        key = (entry.model, entry.deployment_type, entry.region)
        sources.setdefault(key, []).append(finding.resource)
        old = merged.get(key)
        if old is None:
            merged[key] = entry
            continue
        prices = dict(old.prices)
        for kind, price in entry.prices.items():
            if kind in prices and prices[kind] != price:
                notes.append(f"{entry.model} {entry.deployment_type} {kind}: {finding.resource} was billed "
                             f"{price} USD per 1M, not {prices[kind]} as on {sources[key][0]}; the table keeps "
                             f"{prices[kind]}")
                continue
            prices[kind] = price
        merged[key] = PriceEntry(old.model, old.deployment_type, old.region,
                                 min(old.effective_from, entry.effective_from), prices, old.source)
    files = ", ".join(visible(path) for path in exports)
    text = [
        f"# Written by meter reconcile --write-prices on {today.isoformat()}, from {files}.",
        "# The prices Azure billed where they differ from meter's tables, USD per 1M tokens, read back from",
        "# the export's costs. Check them against your agreement, then layer this table on the built-ins:",
        "#   meter pricing validate FILE; meter reprice --ledger LEDGER --tables FILE [--apply];",
        "#   Meter(price_tables=[FILE]).",
        "",
        "[table]",
        f'version = "reconciled-{today.isoformat()}"',
        f"published = {today.isoformat()}",
        'currency = "USD"',
        'description = "Prices billed in Azure cost exports, read back by meter reconcile"',
    ]
    for key in sorted(merged):
        text.append("")
        for note in notes:
            if note.startswith(f"{key[0]} {key[1]} "):
                text.append(f"# {visible(note)}")
        text.extend(merged[key].toml())
    return "\n".join(text) + "\n", len(merged), notes
