"""Budgets in telemetry (issue 24): the gauges and the refused counter a scrape reads from the store,
the alert thresholds as series, and one OTel event per threshold crossed."""

from __future__ import annotations

import gc
from typing import Any

import httpx2
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import meter
from meter import names

URL = "https://x.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
# 1000 input tokens at 2.5 USD/M + 500 output at 10 USD/M: 0.0075 a call; worst case at max_tokens=1000: 0.0125
SOFT = {"name": "search-soft", "match": {"team": "search"}, "period": "month", "limit_usd": "0.02",
        "alert_at": ["50%", "80%"]}
HARD = {"name": "search-hard", "match": {"team": "search"}, "period": "day", "limit_usd": "0.02", "enforce": "hard"}


def azure(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={
        "id": "chatcmpl-t", "object": "chat.completion", "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})


def _calls(m: meter.Meter, n: int) -> list[int]:
    """``n`` calls one after the other, then a flush: their records and settlements come on the metering worker."""
    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(azure), meter=m))
    with meter.attribute(team="search"):
        codes = [client.post(URL, json={"max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
                             ).status_code for _ in range(n)]
    assert m.flush(10)
    return codes


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _labels(budget: str, period: str, enforce: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"budget": budget, "period": period, "enforce": enforce, **extra}.items()))


def test_a_scrape_shows_each_budget_and_the_refusals() -> None:
    registry = CollectorRegistry()
    m = meter.Meter(otel=False, registry=registry, budgets=[SOFT, HARD])
    assert _calls(m, 3) == [200, 200, 429]  # 0.0075 + 0.0075 spent: a third worst case (0.0125) passes 0.02
    got = _samples(registry)
    soft, hard = _labels("search-soft", "month", "soft"), _labels("search-hard", "day", "hard")
    assert got[(names.budget_spent_usd("llm"), soft)] == pytest.approx(0.015)
    assert got[(names.budget_spent_usd("llm"), hard)] == pytest.approx(0.015)
    assert got[(names.budget_reserved_usd("llm"), hard)] == 0
    assert got[(names.budget_limit_usd("llm"), soft)] == pytest.approx(0.02)
    assert got[(names.budget_forecast_usd("llm"), hard)] >= 0.015
    assert got[(names.budget_alert_threshold_ratio("llm"), _labels("search-soft", "month", "soft",
                                                                    threshold="80%"))] == pytest.approx(0.8)
    assert got[(names.budget_alert_threshold_ratio("llm"), _labels("search-hard", "day", "hard",
                                                                    threshold="100%"))] == 1
    assert got[(names.budget_refused_total("llm"), (("budget", "search-hard"),))] == 1
    assert ("llm_budget_refused_total", (("budget", "search-soft"),)) not in got
    text = generate_latest(registry).decode()
    assert f"# HELP llm_budget_spent_usd {names.HELP[names.budget_spent_usd]}" in text


def test_the_reservation_of_a_call_in_flight_is_seen() -> None:
    registry = CollectorRegistry()
    m = meter.Meter(otel=False, registry=registry, namespace="app", budgets=[HARD])
    seen: list[float] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        seen.append(_samples(registry)[(names.budget_reserved_usd("app"), _labels("search-hard", "day", "hard"))])
        return azure(request)

    client = httpx2.Client(transport=meter.MeteredTransport(httpx2.MockTransport(upstream), meter=m))
    with meter.attribute(team="search"):
        client.post(URL, json={"max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]})
    assert seen and seen[0] > 0.0075  # the worst case is held while the call is out


def test_no_budgets_no_budget_families_and_a_dropped_meter_leaves_the_scrape() -> None:
    registry = CollectorRegistry()
    meter.Meter(otel=False, registry=registry)
    assert not any(name.startswith("llm_budget") for name, _ in _samples(registry))
    m = meter.Meter(otel=False, registry=registry, budgets=[SOFT])
    assert any(name == "llm_budget_limit_usd" for name, _ in _samples(registry))
    del m
    gc.collect()
    assert not any(name == "llm_budget_limit_usd" for name, _ in _samples(registry))


def test_two_meters_on_one_registry_add_up() -> None:
    registry = CollectorRegistry()
    a = meter.Meter(otel=False, registry=registry, budgets=[SOFT])
    b = meter.Meter(otel=False, registry=registry, budgets=[SOFT])
    _calls(a, 1)
    _calls(b, 1)
    got = _samples(registry)
    assert got[(names.budget_spent_usd("llm"), _labels("search-soft", "month", "soft"))] == pytest.approx(0.015)


def test_an_otel_event_per_threshold_crossed() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    m = meter.Meter(otel=False, prometheus=False, logger_provider=provider, otel_events=True, budgets=[SOFT])
    _calls(m, 3)  # 0.0075 (37.5%), 0.015 (75%: crosses 50%), 0.0225 (112%: crosses 80%)
    provider.force_flush()
    alerts: list[Any] = [item.log_record for item in exporter.get_finished_logs()
                         if item.log_record.event_name == names.BUDGET_ALERT_EVENT]
    assert [a.attributes[names.BUDGET_THRESHOLD] for a in alerts] == ["50%", "80%"]
    first = alerts[0].attributes
    assert first[names.BUDGET_NAME] == "search-soft"
    assert first[names.BUDGET_SPENT] == pytest.approx(0.015) and first[names.BUDGET_LIMIT] == pytest.approx(0.02)
    assert "search-soft" in str(alerts[0].body)


def test_no_alert_events_unless_asked() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    m = meter.Meter(otel=False, prometheus=False, logger_provider=provider, otel_events=False, budgets=[SOFT])
    _calls(m, 3)
    assert exporter.get_finished_logs() == ()


def test_a_hard_budgets_refusal_counter_exists_at_zero_before_its_first_refusal() -> None:
    """So Prometheus' increase() counts the first refusals: a series first scraped at 2 reads 0 over any range."""
    from prometheus_client import CollectorRegistry, generate_latest

    import meter

    registry = CollectorRegistry()
    hard = {"name": "sandbox", "match": {}, "period": "day", "limit_usd": "1", "enforce": "hard"}
    soft = {**hard, "name": "watch", "enforce": "soft"}
    m = meter.Meter(otel=False, registry=registry, budgets=[hard, soft])
    text = generate_latest(registry).decode()
    assert 'llm_budget_refused_total{budget="sandbox"} 0.0' in text
    assert 'budget="watch"' not in "\n".join(line for line in text.splitlines() if "refused" in line)
    assert m.close()
