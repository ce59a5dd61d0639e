"""The catalogue of usage kinds (``meter.core.usage_kinds``, declared on ``meter.Usage``) is the one list.

Everything that names usage kinds iterates it: the readers, the subset caps, the ledger columns, the
report, the span attributes, the Prometheus counters, the dashboards. ``meter.pricing`` imports nothing
of meter, so it keeps its own table of price kinds (``PRICE_KINDS``): the tests here hold the two to
each other, so a kind added to the catalogue with a price column that pricing does not bill the same
way fails here, by name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

import meter
from meter import names
from meter.core.record import USAGE_KINDS, Usage
from meter.core.tools import ITEM_KINDS
from meter.core.units import UNIT_KINDS as CORE_UNIT_KINDS
from meter.core.usage import cap_subsets
from meter.ledger.open import open_ledger
from meter.ledger.schema import TOKEN_COLUMNS
from meter.pricing.model import KINDS, PRICE_KINDS
from meter.pricing.model import UNIT_KINDS as PRICING_UNIT_KINDS
from meter.pricing.usage import token_buckets
from tests.support.ledgers import query, run

BY_NAME = {kind.name: kind for kind in USAGE_KINDS}
PRICE = {kind.name: kind for kind in PRICE_KINDS}


def test_every_usage_field_is_a_catalogue_entry_and_every_entry_is_whole() -> None:
    assert [f.name for f in dataclasses.fields(Usage)] == [kind.name for kind in USAGE_KINDS]
    for kind in USAGE_KINDS:
        assert kind.help, kind.name
        if kind.counted_from == "usage":  # read from the usage object: where each API reports it
            assert kind.chat and kind.responses, kind.name
        else:  # counted from the output items: by the tool counter, and only there
            assert kind.counted_from == "output" and not kind.chat and not kind.responses, kind.name
            assert kind.name in ITEM_KINDS.values(), kind.name
        assert set(kind.subset_of) <= set(BY_NAME), kind.name
        parents_first = [k.name for k in USAGE_KINDS]
        assert all(parents_first.index(whole) < parents_first.index(kind.name) for whole in kind.subset_of)


def test_each_price_column_is_billed_by_the_kind_the_catalogue_names() -> None:
    priced = {kind.price_kind: kind for kind in USAGE_KINDS if kind.price_kind}
    by_units = {column for unit in CORE_UNIT_KINDS for column in unit.price_kinds}
    assert not set(priced) & by_units
    assert set(priced) | by_units == set(KINDS), "every price column is some usage or unit kind's, and only those"
    assert by_units == PRICING_UNIT_KINDS, "pricing reads from a call's units exactly the columns units bill"
    for column, kind in priced.items():
        assert PRICE[column].counted_by == kind.name
        inside = {k.price_kind for k in USAGE_KINDS if kind.name in k.subset_of and k.price_kind}
        assert set(PRICE[column].within) == inside, f"{column}: pricing {PRICE[column].within}, catalogue {inside}"


counts = st.integers(min_value=0, max_value=10**6)


@settings(max_examples=300, deadline=None)
@given(st.tuples(*(counts for _ in USAGE_KINDS)))
def test_every_token_is_billed_once(values: tuple[int, ...]) -> None:
    usage = cap_subsets(Usage(*values))
    buckets = token_buckets(usage)
    tokens = {kind.name for kind in PRICE_KINDS if kind.unit == "tokens"}
    assert sum(n for name, n in buckets.items() if name in tokens) == usage.input_tokens + usage.output_tokens
    assert all(n > 0 for n in buckets.values())
    for kind in PRICE_KINDS:  # tool calls and sessions are billed as counted, apart from the tokens
        if kind.unit != "tokens" and kind.name not in PRICING_UNIT_KINDS:
            assert buckets.get(kind.name, 0) == getattr(usage, kind.counted_by), kind.name


def _one_call(m: meter.Meter) -> None:
    body = {"id": "c", "model": "gpt-4o", "choices": [],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 8, "audio_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 2}}}
    client = httpx2.Client(transport=meter.MeteredTransport(
        httpx2.MockTransport(lambda request: httpx2.Response(200, json=body)), meter=m))
    client.post("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21", json={})


def test_the_metrics_and_the_ledger_carry_every_kind_the_catalogue_gives_them(tmp_path: Any) -> None:
    registry = CollectorRegistry()
    records: list[meter.CallRecord] = []
    m = meter.Meter(otel=False, registry=registry, ledger=tmp_path / "l.sqlite", on_record=records.append)
    _one_call(m)
    assert m.close()
    usage = records[0].usage
    assert usage is not None
    exposition = generate_latest(registry).decode()
    for kind in names.PROMETHEUS_USAGE_KINDS:
        family = names.usage_total(names.DEFAULT_NAMESPACE, kind.name)
        assert f"# HELP {family} {kind.help}" in exposition
        assert any(line.startswith(family + "{") and line.endswith(f" {float(getattr(usage, kind.name))}")
                   for line in exposition.splitlines()), family
    [row] = query(str(tmp_path / "l.sqlite"), f"SELECT {', '.join(TOKEN_COLUMNS)} FROM calls")
    assert dict(zip(TOKEN_COLUMNS, row, strict=True)) == {kind.name: getattr(usage, kind.name) for kind in USAGE_KINDS}


def test_a_ledger_made_before_a_kind_was_added_gains_its_column(ledger_url: str) -> None:
    """A kind added to the catalogue is a column the ledger gets when it is next opened for writing."""
    open_ledger(ledger_url).close()
    run(ledger_url, "ALTER TABLE calls DROP COLUMN cached_audio_input_tokens")  # as a ledger from before that kind
    m = meter.Meter(otel=False, registry=CollectorRegistry(), ledger=ledger_url)
    _one_call(m)
    assert m.close() and m.ledger is not None and m.ledger.written == 1
    assert query(ledger_url, "SELECT count(*), sum(input_tokens) FROM calls") == [(1, 100)]
    assert query(ledger_url, "SELECT cached_audio_input_tokens FROM calls") == [(0,)]


def test_the_readme_documents_every_usage_kind_as_the_catalogue_declares_it() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for kind in USAGE_KINDS:
        assert f"| `{kind.name}` | {kind.help} |" in readme, kind.name
