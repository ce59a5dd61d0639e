"""LiteLLM against the embedded emulator, with meter instrumenting LiteLLM's HTTP handlers.

LiteLLM is an optional test dependency: the test modules skip themselves when it
is not installed. The machine may have no internet, so LiteLLM is told to use its
bundled model cost map and to send no telemetry before it is first imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest

import meter
from meter.adapters.transport import AsyncMeteredTransport, MeteredTransport
from meter.apps.emulator import Deployment, Emulator, EmulatorConfig
from meter.pricing import PriceBook

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map over the network

# Deployment name -> served model (the emulator) and the model + type meter prices it as.
DEPLOYMENTS: dict[str, tuple[str, str]] = {
    "o1-pro": ("o1-pro-2025-03-19", "o1-pro"),
    "codex-mini": ("codex-mini-2025-05-16", "codex-mini"),
    "my-custom-o1-pro": ("o1-pro-2025-03-19", "o1-pro"),
}
DEPLOYMENT_TYPE = "GlobalStandard"
CONFIG = EmulatorConfig(
    deployments=tuple(Deployment(name, served, DEPLOYMENT_TYPE, reasoning=True)
                      for name, (served, _) in DEPLOYMENTS.items()),
)
API_KEY = CONFIG.api_key


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture(autouse=True)
def _quiet_litellm() -> None:
    litellm: Any = pytest.importorskip("litellm", reason="LiteLLM is not installed: pip install litellm "
                                                          "(optional test extra)")
    litellm.telemetry = False
    litellm.suppress_debug_info = True


@pytest.fixture
def records(emu: Emulator) -> Iterator[list[meter.CallRecord]]:
    """LiteLLM instrumented with a fresh meter for this test; the emulator's ledger starts empty."""
    from meter.integrations import litellm as integration

    emu.usage_log.clear()
    out: list[meter.CallRecord] = []
    m = meter.Meter(
        on_record=out.append,
        registry=prometheus_client.CollectorRegistry(),
        otel=False,
        deployments={name: (model, DEPLOYMENT_TYPE) for name, (_, model) in DEPLOYMENTS.items()},
    )
    integration.instrument(m)
    try:
        yield out
    finally:
        integration.uninstrument()


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``METHOD path?query`` of every request that went through a meter transport."""
    urls: list[str] = []
    sync_handle = MeteredTransport.handle_request
    async_handle = AsyncMeteredTransport.handle_async_request

    def spy(self: MeteredTransport, request: Any) -> Any:
        urls.append(f"{request.method} {request.url.raw_path.decode()}")
        return sync_handle(self, request)

    async def aspy(self: AsyncMeteredTransport, request: Any) -> Any:
        urls.append(f"{request.method} {request.url.raw_path.decode()}")
        return await async_handle(self, request)

    monkeypatch.setattr(MeteredTransport, "handle_request", spy)
    monkeypatch.setattr(AsyncMeteredTransport, "handle_async_request", aspy)
    return urls
