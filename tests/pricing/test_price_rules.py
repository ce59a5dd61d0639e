"""How prices are chosen and added up. Expected amounts are worked out by hand in each test."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pricing_helpers import FakeUsage, utc

from meter.pricing import Cost, PriceBook

M = 1_000_000
K = 100_000  # under the 272k long-context threshold


def total(book: PriceBook, model: str, usage: FakeUsage, **kw: object) -> Decimal | None:
    return book.cost_of(usage, model=model, **kw).total  # type: ignore[arg-type]


# ---- token arithmetic ---------------------------------------------------------


def test_cached_cache_write_and_reasoning_gpt56(book: PriceBook) -> None:
    # gpt-5.6 (sol) Global: input 5, cached 0.5, cache write 6.25, output 30 (USD per 1M; meters from
    # 2026-07-01, the standard price before the 2026-09-01 promotion).
    usage = FakeUsage(
        input_tokens=10_000,
        cached_input_tokens=4_000,
        cache_write_input_tokens=2_000,
        output_tokens=3_000,
        reasoning_output_tokens=1_000,
    )
    cost = book.cost_of(usage, model="gpt-5.6", at=utc(2026, 8, 11))
    # text input 10000-4000-2000 = 4000 x 5 = 0.02; cached 4000 x 0.5 = 0.002;
    # cache write 2000 x 6.25 = 0.0125; output 3000 x 30 = 0.09 (reasoning inside it)
    assert cost.amounts == {
        "input": Decimal("0.02"),
        "cached_input": Decimal("0.002"),
        "cache_write": Decimal("0.0125"),
        "output": Decimal("0.09"),
    }
    assert cost.total == Decimal("0.1245")
    assert cost.tokens == {"input": 4000, "cached_input": 4000, "cache_write": 2000, "output": 3000}


def test_cache_write_on_models_that_do_not_charge_it_is_billed_as_input(book: PriceBook) -> None:
    # gpt-4.1 Global: 2 / 0.5 / 8. Before GPT-5.6 cache writes cost no extra: input rate.
    usage = FakeUsage(input_tokens=1000, cached_input_tokens=300, cache_write_input_tokens=200, output_tokens=100)
    cost = book.cost_of(usage, model="gpt-4.1", at=utc(2026, 1, 1))
    # 500 x 2 = 0.001; 300 x 0.5 = 0.00015; 200 x 2 = 0.0004; 100 x 8 = 0.0008
    assert cost.total == Decimal("0.00235")
    assert cost.unit_prices["cache_write"] == Decimal("2")
    assert "gpt-4.1:GlobalStandard@2025-04-01/input" in cost.row_ids


def test_reasoning_tokens_are_never_added_twice(book: PriceBook) -> None:
    # gpt-5 output 10/1M: 1000 output tokens of which 800 reasoning -> 1000 x 10 = 0.01
    cost = book.cost_of(FakeUsage(output_tokens=1000, reasoning_output_tokens=800), model="gpt-5", at=utc(2026, 1, 1))
    assert cost.total == Decimal("0.01")


def test_audio_tokens_are_their_own_buckets(book: PriceBook) -> None:
    # gpt-realtime Global: text 4 / 0.4 / 16, audio in 32, audio out 64.
    usage = FakeUsage(
        input_tokens=1000, cached_input_tokens=100, audio_input_tokens=600, output_tokens=500, audio_output_tokens=300
    )
    cost = book.cost_of(usage, model="gpt-realtime", at=utc(2026, 1, 1))
    # text in 300 x 4 = 0.0012; cached 100 x 0.4 = 0.00004; audio in 600 x 32 = 0.0192;
    # text out 200 x 16 = 0.0032; audio out 300 x 64 = 0.0192
    assert cost.amounts == {
        "input": Decimal("0.0012"),
        "cached_input": Decimal("0.00004"),
        "output": Decimal("0.0032"),
        "audio_input": Decimal("0.0192"),
        "audio_output": Decimal("0.0192"),
    }
    assert cost.total == Decimal("0.04284")


def test_text_input_is_clamped_at_zero(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(input_tokens=10, cached_input_tokens=20), model="gpt-5", at=utc(2026, 1, 1))
    # No text input left, and never more cached tokens billed than the input holds (issue 20: a subset above
    # its total was billed as reported, 20 x 0.125)
    assert cost.tokens == {"cached_input": 10}
    assert cost.total == Decimal("0.00000125")  # 10 x 0.125


def test_no_floats_anywhere(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(3, 1, 0, 7), model="gpt-5-chat", at=utc(2026, 1, 1))
    assert isinstance(cost.total, Decimal)
    assert all(isinstance(v, Decimal) for v in [*cost.amounts.values(), *cost.unit_prices.values()])


# ---- dated changes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "dtype", "before", "after", "usage", "price_before", "price_after"),
    [
        # o3: 10 / 40 -> 2 / 8 on 2025-06-01 (Azure meter effectiveStartDate)
        ("o3-2025-04-16", "GlobalStandard", date(2025, 5, 31), date(2025, 6, 1), FakeUsage(M, 0, 0, M), "50", "10"),
        # o1-mini: 3 / 12 -> 1.1 / 4.4 (2025-03)
        ("o1-mini", "GlobalStandard", date(2025, 2, 28), date(2025, 3, 1), FakeUsage(M, 0, 0, M), "15", "5.5"),
        # Azure's dates, not OpenAI's announcements (OpenAI cut luna and terra on 2026-07-30 and
        # sol on 2026-08-21; Azure's meters re-priced from 2026-08-01 and 2026-09-01):
        # gpt-5.6-terra 2.5 / 15 -> 2 / 12 (2026-08-01); 100k in + 100k out (under the 272k tier)
        ("gpt-5.6-terra", "GlobalStandard", date(2026, 7, 31), date(2026, 8, 1), FakeUsage(K, 0, 0, K), "1.75", "1.4"),
        # gpt-5.6-luna 1 / 6 -> 0.2 / 1.2 (2026-08-01)
        ("gpt-5.6-luna", "GlobalStandard", date(2026, 7, 31), date(2026, 8, 1), FakeUsage(K, 0, 0, K), "0.7", "0.14"),
        # gpt-5.6-sol 5 / 30 -> 4 / 20, the promotion (2026-09-01)
        ("gpt-5.6-sol", "GlobalStandard", date(2026, 8, 31), date(2026, 9, 1), FakeUsage(K, 0, 0, K), "3.5", "2.4"),
        # Data Zone and Regional embeddings: 1.0x -> 1.1x Global on 2025-09-01 (Azure's uplift)
        ("text-embedding-3-small", "Standard:eastus", date(2025, 8, 31), date(2025, 9, 1), FakeUsage(M), "0.02",
         "0.022"),
        ("gpt-4o-2024-05-13", "DataZoneStandard", date(2025, 8, 31), date(2025, 9, 1), FakeUsage(M, 0, 0, M), "20",
         "22"),
        # bare gpt-4o alias moved from 2024-05-13 (5 / 15) to 2024-11-20 (2.5 / 10) in 2025-03
        ("gpt-4o", "GlobalStandard", date(2025, 2, 28), date(2025, 3, 1), FakeUsage(M, 0, 0, M), "20", "12.5"),
    ],
)
def test_price_changes_at_the_effective_date(
    book: PriceBook,
    model: str,
    dtype: str,
    before: date,
    after: date,
    usage: FakeUsage,
    price_before: str,
    price_after: str,
) -> None:
    dtype, _, region = dtype.partition(":")
    where = {"deployment_type": dtype, "region": region or None}
    assert total(book, model, usage, **where, at=before) == Decimal(price_before)
    assert total(book, model, usage, **where, at=after) == Decimal(price_after)


def test_transcription_audio_has_no_invented_cut(book: PriceBook) -> None:
    """Azure meters gpt-4o-transcribe audio input at 6 and mini at 3 per 1M throughout: the 2.5 / 1.25
    'cut' of earlier tables has no source (Retail snapshot 2026-08-11, meters '...-aud-inp-glbl')."""
    audio = FakeUsage(M, 0, 0, 0, 0, M)
    for at in (date(2025, 6, 1), date(2026, 5, 14), date(2026, 11, 1)):
        assert total(book, "gpt-4o-transcribe", audio, at=at) == Decimal("6")
        assert total(book, "gpt-4o-mini-transcribe", audio, at=at) == Decimal("3")


def test_o3_change_is_keyed_to_the_call_time_in_utc(book: PriceBook) -> None:
    usage = FakeUsage(M, 0, 0, M)
    late_may_utc = datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC)
    assert total(book, "o3", usage, at=late_may_utc) == Decimal("50")
    assert total(book, "o3", usage, at=datetime(2025, 6, 1, 0, 0, tzinfo=UTC)) == Decimal("10")


def test_o3_data_zone_before_the_cut_is_unknown_not_guessed(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(M, 0, 0, M), model="o3", deployment_type="DataZoneStandard", at=utc(2025, 5, 1))
    assert cost.basis == "unknown"
    assert cost.total is None


def test_row_ids_name_the_row_in_force(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(1, 0, 0, 1), model="o3", at=utc(2025, 5, 1))
    assert cost.row_ids == ("o3:GlobalStandard@2025-04-16/input", "o3:GlobalStandard@2025-04-16/output")


# ---- corrections --------------------------------------------------------------


def test_gpt55_pro_correction_believed_and_true(book: PriceBook) -> None:
    usage = FakeUsage(K, 0, 0, K)  # 100k in + 100k out
    at = utc(2026, 4, 25)
    assert total(book, "gpt-5.5-pro", usage, at=at, believed_at=utc(2026, 4, 28)) == Decimal("42")  # 6 + 36
    assert total(book, "gpt-5.5-pro", usage, at=at, believed_at=utc(2026, 4, 29)) == Decimal("21")  # 3 + 18
    assert total(book, "gpt-5.5-pro", usage, at=at) == Decimal("21")
    cached = FakeUsage(K, K, 0, 0)
    assert total(book, "gpt-5.5-pro", cached, at=at, believed_at=utc(2026, 4, 28)) == Decimal("0.6")
    assert total(book, "gpt-5.5-pro", cached, at=at) == Decimal("0.3")


def test_rows_recorded_later_are_not_believed_earlier(book: PriceBook) -> None:
    # gpt-5.5-pro's first entry was recorded 2026-04-23: a day earlier nothing was known.
    cost = book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-5.5-pro", at=utc(2026, 4, 23), believed_at=date(2026, 4, 22))
    assert cost.basis == "unknown"


# ---- deployment types and regions --------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "region", "expected"),
    [
        ("GlobalStandard", None, "12.5"),  # 2.5 + 10
        ("DataZoneStandard", None, "13.75"),  # 2.75 + 11
        ("Standard", "eastus2", "13.75"),  # 1.1x Global
        ("Standard", "East US 2", "13.75"),  # region names are normalised
        ("Standard", "swedencentral", "15.125"),  # 3.025 + 12.1: 1.21x
        ("Standard", "japaneast", "15.125"),
        ("GlobalBatch", None, "6.25"),  # 1.25 + 5
        ("DataZoneBatch", None, "6.875"),  # 1.375 + 5.5
        ("global-standard", None, "12.5"),  # aliases
        ("dz", None, "13.75"),
        ("regional", "eastus", "13.75"),
        ("batch", None, "6.25"),
    ],
)
def test_gpt4o_1120_by_deployment_type(book: PriceBook, dtype: str, region: str | None, expected: str) -> None:
    usage = FakeUsage(M, 0, 0, M)
    cost = book.cost_of(usage, model="gpt-4o-2024-11-20", deployment_type=dtype, region=region, at=utc(2026, 1, 1))
    assert cost.total == Decimal(expected)
    assert cost.assumed_deployment_type is False


def test_a_region_azure_does_not_sell_in_is_unknown(book: PriceBook) -> None:
    """No Standard meter for gpt-4o-2024-11-20 in westeurope: unknown, not another region's price."""
    cost = book.cost_of(FakeUsage(M, 0, 0, M), model="gpt-4o-2024-11-20", deployment_type="Standard",
                        region="westeurope", at=utc(2026, 1, 1))
    assert (cost.basis, cost.total) == ("unknown", None)


def test_gpt4o_0513_data_zone_and_regional_uplift(book: PriceBook) -> None:
    """Priced as Global until Azure's 2025-09-01 uplift, 1.1x after (meters 'gpt-4o-0513 ... DZone')."""
    usage = FakeUsage(M, 0, 0, M)
    for dtype, region in (("GlobalStandard", None), ("DataZoneStandard", None), ("Standard", "eastus2")):
        assert total(book, "gpt-4o-2024-05-13", usage, deployment_type=dtype, region=region, at=utc(2025, 1, 1)) == 20
    for dtype, region, after in (("GlobalStandard", None, "20"), ("DataZoneStandard", None, "22"),
                                 ("Standard", "eastus2", "22"), ("Standard", "westus", "22")):
        assert total(book, "gpt-4o-2024-05-13", usage, deployment_type=dtype, region=region,
                     at=utc(2025, 9, 1)) == Decimal(after)


def test_gpt5_data_zone_batch(book: PriceBook) -> None:
    usage = FakeUsage(M, M // 2, 0, M)
    # DZ batch gpt-5: 0.6875 / 0.06875 / 5.5 -> 500k x 0.6875 + 500k x 0.06875 + 1M x 5.5
    assert total(book, "gpt-5", usage, deployment_type="DataZoneBatch", at=utc(2026, 1, 1)) == Decimal("5.878125")


def test_priority(book: PriceBook) -> None:
    """Priority is not 2x everywhere: gpt-5.5 is 2.5x (12.5 / 75), gpt-4.1-mini 1.75x (0.7 / 2.8)."""
    usage = FakeUsage(K, 0, 0, K)  # 100k x 12.5 + 100k x 75
    assert total(book, "gpt-5.5", usage, deployment_type="GlobalPriority", at=utc(2026, 6, 1)) == Decimal("8.75")
    assert total(book, "gpt-5.5", usage, deployment_type="priority", at=utc(2026, 6, 1)) == Decimal("8.75")
    assert total(book, "gpt-4.1-mini", usage, deployment_type="priority", at=utc(2026, 6, 1)) == Decimal("0.35")
    # no long-context Priority meter: unknown rather than the standard rate
    big = FakeUsage(300_000, 0, 0, 10)
    assert book.cost_of(big, model="gpt-5.5", deployment_type="GlobalPriority", at=utc(2026, 6, 1)).basis == "unknown"


def test_embeddings_regional_and_data_zone(book: PriceBook) -> None:
    """Global 0.02; Data Zone and US Regional 1.1x since 2025-09-01; US Gov 1.25x; westeurope 0.027
    (meter 'text-embedding-3-small-regional', 2.7e-05 per 1K)."""
    usage = FakeUsage(input_tokens=M)
    at = utc(2026, 11, 1)
    for dtype, region, expected in (("GlobalStandard", None, "0.02"), ("DataZoneStandard", None, "0.022"),
                                    ("Standard", "eastus", "0.022"), ("Standard", "usgovarizona", "0.025"),
                                    ("Standard", "westeurope", "0.027")):
        assert total(book, "text-embedding-3-small", usage, deployment_type=dtype, region=region, at=at) == Decimal(
            expected), (dtype, region)


def test_batch_cached_tokens_without_a_batch_cache_price_are_unknown(book: PriceBook) -> None:
    """Not billed at the full batch rate and not at 0: there is no such price (litellm PR #38341)."""
    cost = book.cost_of(FakeUsage(100, 50, 0, 10), model="gpt-4.1", deployment_type="GlobalBatch", at=utc(2026, 1, 1))
    assert cost.basis == "unknown"
    assert cost.total is None
    assert cost.amounts["input"] == Decimal("0.00005")  # 50 x 1
    assert cost.amounts["cached_input"] is None
    assert cost.reason is not None and "cached_input" in cost.reason


@pytest.mark.parametrize(
    ("model", "dtype", "region", "reason_part"),
    [
        ("gpt-4o-2024-11-20", "Standard", None, "no region given"),
        ("gpt-4o-2024-11-20", "Standard", "brazilsouth", "in brazilsouth"),
        ("codex-mini", "DataZoneBatch", None, "DataZoneBatch"),  # no Data Zone Batch meter
        ("gpt-5", "Standard", "eastus2", "Standard in eastus2"),  # no regional meter
    ],
)
def test_missing_deployment_or_region_is_unknown(
    book: PriceBook, model: str, dtype: str, region: str | None, reason_part: str
) -> None:
    cost = book.cost_of(FakeUsage(10, 0, 0, 10), model=model, deployment_type=dtype, region=region, at=utc(2026, 1, 1))
    assert cost.basis == "unknown"
    assert cost.total is None
    assert cost.reason is not None and reason_part in cost.reason


def test_default_deployment_type_is_global_standard_and_flagged(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(M, 0, 0, 0), model="gpt-4.1", at=utc(2026, 1, 1))
    assert cost.deployment_type == "GlobalStandard"
    assert cost.assumed_deployment_type is True
    assert cost.total == Decimal("2")
    explicit = book.cost_of(FakeUsage(M, 0, 0, 0), model="gpt-4.1", deployment_type="globalstandard",
                            at=utc(2026, 1, 1))
    assert explicit.deployment_type == "GlobalStandard"
    assert explicit.assumed_deployment_type is False


@pytest.mark.parametrize(
    "dtype", ["GlobalProvisionedManaged", "DataZoneProvisionedManaged", "ProvisionedManaged", "ptu"]
)
def test_provisioned_is_zero_with_basis_provisioned(book: PriceBook, dtype: str) -> None:
    cost = book.cost_of(FakeUsage(1000, 100, 0, 50), model="gpt-4.1", deployment_type=dtype, at=utc(2026, 1, 1))
    assert cost.basis == "provisioned"
    assert cost.total == Decimal(0)
    assert cost.amounts == {"input": Decimal(0), "cached_input": Decimal(0), "output": Decimal(0)}
    assert cost.model == "gpt-4.1"
    assert cost.reason is None
    assert book.unpriced_calls == {}


# ---- long context -----------------------------------------------------------


def test_long_context_cliff_gpt54(book: PriceBook) -> None:
    at = utc(2026, 6, 1)
    at_threshold = book.cost_of(FakeUsage(272_000, 0, 0, 1000), model="gpt-5.4", at=at)
    # 272000 x 2.5 = 0.68; 1000 x 15 = 0.015
    assert at_threshold.total == Decimal("0.695")
    assert at_threshold.long_context is False
    above = book.cost_of(FakeUsage(272_001, 0, 0, 1000), model="gpt-5.4", at=at)
    # every token at the long-context rate: 272001 x 5 = 1.360005; 1000 x 22.5 = 0.0225
    assert above.total == Decimal("1.382505")
    assert above.long_context is True
    assert above.row_ids == (
        "gpt-5.4:GlobalStandard:>272000@2026-03-01/input",
        "gpt-5.4:GlobalStandard:>272000@2026-03-01/output",
    )


def test_long_context_counts_cached_tokens_toward_the_threshold(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(272_001, 200_000, 0, 1000), model="gpt-5.4", at=utc(2026, 6, 1))
    # 72001 x 5 = 0.360005; 200000 x 0.5 = 0.1; 1000 x 22.5 = 0.0225
    assert cost.total == Decimal("0.482505")


def test_long_context_gpt56_cache_write(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(300_000, 0, 100_000, 0), model="gpt-5.6", at=utc(2026, 8, 11))
    # 200000 x 10 = 2; 100000 x 12.5 = 1.25
    assert cost.total == Decimal("3.25")


def test_long_context_without_a_long_context_row_is_unknown(book: PriceBook) -> None:
    # gpt-5.5 has long-context meters for Global and Data Zone but not for Priority
    cost = book.cost_of(
        FakeUsage(300_000, 0, 0, 10), model="gpt-5.5", deployment_type="GlobalPriority", at=utc(2026, 6, 1)
    )
    assert cost.basis == "unknown"
    assert cost.reason is not None and "long context" in cost.reason
    short = book.cost_of(
        FakeUsage(1000, 0, 0, 10), model="gpt-5.5", deployment_type="GlobalPriority", at=utc(2026, 6, 1)
    )
    assert short.total == Decimal("0.0125") + Decimal("0.00075")  # 1000 x 12.5 + 10 x 75


def test_models_without_a_tier_never_switch(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(1_000_000, 0, 0, 0), model="gpt-4.1", at=utc(2026, 1, 1))
    assert cost.total == Decimal("2")
    assert cost.long_context is False


# ---- unknown ------------------------------------------------------------------


def test_unknown_model_is_unknown_warned_once_and_counted(book: PriceBook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pricing")
    usage = FakeUsage(10, 0, 0, 5)
    first = book.cost_of(usage, model="my-private-model", at=utc(2026, 1, 1))
    second = book.cost_of(usage, model="my-private-model", at=utc(2026, 1, 1))
    book.cost_of(usage, model="other-model", at=utc(2026, 1, 1))
    for cost in (first, second):
        assert cost.basis == "unknown"
        assert cost.total is None
        assert cost.amounts == {"input": None, "output": None}
        assert cost.model is None
        assert cost.reason == "unknown model 'my-private-model': no price rows match it"
    warnings = [r for r in caplog.records if r.name == "pricing" and r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "my-private-model" in warnings[0].getMessage()
    assert book.unpriced_calls == {"my-private-model": 2, "other-model": 1}


def test_missing_price_kind_is_unknown_with_partial_amounts(book: PriceBook) -> None:
    # o3-pro has no cached-input meter: input 20, output 80
    cost = book.cost_of(FakeUsage(1000, 500, 0, 100), model="o3-pro", at=utc(2026, 1, 1))
    assert cost.basis == "unknown"
    assert cost.total is None
    assert cost.amounts == {"input": Decimal("0.01"), "cached_input": None, "output": Decimal("0.008")}
    assert cost.reason == "no cached_input price for o3-pro on GlobalStandard at 2026-01-01"
    assert book.unpriced_calls == {"o3-pro": 1}


def test_unused_missing_kind_does_not_matter(book: PriceBook) -> None:
    assert book.cost_of(FakeUsage(1000, 0, 0, 100), model="o3-pro", at=utc(2026, 1, 1)).basis == "list"


def test_audio_tokens_on_a_text_model_are_unknown(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(100, 0, 0, 0, 0, 50), model="gpt-4.1", at=utc(2026, 1, 1))
    assert cost.basis == "unknown"
    assert cost.amounts["audio_input"] is None


def test_unknown_deployment_type_is_unknown(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-4.1", deployment_type="Turbo", at=utc(2026, 1, 1))
    assert cost.basis == "unknown"
    assert cost.deployment_type is None
    assert cost.reason is not None and "unknown deployment type 'Turbo'" in cost.reason


def test_no_model_is_unknown(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(1, 0, 0, 1), model=None)
    assert cost.basis == "unknown"
    assert book.unpriced_calls == {"(none)": 1}


def test_before_a_model_existed_is_unknown(book: PriceBook) -> None:
    assert book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-5", at=utc(2025, 1, 1)).basis == "unknown"


# ---- pass-through fields ----------------------------------------------------


def test_estimated_and_metadata_pass_through(book: PriceBook) -> None:
    at = datetime(2026, 1, 1, 8, 30)  # naive: taken as UTC
    cost = book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-4.1-2025-04-14", region="eastus", at=at, estimated=True)
    assert isinstance(cost, Cost)
    assert cost.estimated is True
    assert cost.requested_model == "gpt-4.1-2025-04-14"
    assert cost.model == "gpt-4.1"
    assert cost.at == datetime(2026, 1, 1, 8, 30, tzinfo=UTC)
    assert cost.region == "eastus"
    assert cost.currency == "USD"
    assert book.cost_of(FakeUsage(1, 0, 0, 1), model="gpt-4.1").estimated is False


def test_zero_usage_costs_zero_for_a_known_model(book: PriceBook) -> None:
    cost = book.cost_of(FakeUsage(), model="gpt-4.1", at=utc(2026, 1, 1))
    assert cost.total == Decimal(0)
    assert cost.basis == "list"


def test_meter_usage_is_accepted_when_meter_imports() -> None:
    record = pytest.importorskip("meter.core.record")
    usage = record.Usage(input_tokens=16, output_tokens=22, total_tokens=38)
    cost = PriceBook.load().cost_of(usage, model="gpt-4.1-mini-2025-04-14", at=utc(2026, 11, 1))
    assert cost.total == Decimal("0.0000416")


def test_price_is_fast(book: PriceBook) -> None:
    import time

    usage = FakeUsage(3662, 2944, 0, 863, 512)
    at = utc(2026, 11, 1)
    book.cost_of(usage, model="gpt-5-mini-2025-08-07", at=at)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        book.cost_of(usage, model="gpt-5-mini-2025-08-07", at=at)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 200e-6  # budget is 50 us; generous here so a loaded CI box does not flake


def test_the_old_name_price_still_works_and_says_it_is_renamed(book: PriceBook) -> None:
    """``PriceBook.price`` was the public name until ``cost_of``; it stays one release, warning, same answer."""
    usage = FakeUsage(1000, 100, 0, 50)
    with pytest.warns(DeprecationWarning, match="renamed PriceBook.cost_of"):
        old = book.price(usage, model="gpt-4.1", deployment_type="DataZoneStandard", at=utc(2026, 1, 1))
    assert old == book.cost_of(usage, model="gpt-4.1", deployment_type="DataZoneStandard", at=utc(2026, 1, 1))
    assert old.total is not None and old.total > 0
