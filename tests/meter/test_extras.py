"""``meter.extras`` and pyproject.toml agree: each part's modules come with the extra its message names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from meter import extras

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTION = {"openai": "openai", "starlette": "starlette", "uvicorn": "uvicorn",
                "opentelemetry.sdk": "opentelemetry-sdk",
                "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
                "litellm": "litellm", "langchain_openai": "langchain-openai", "matplotlib": "matplotlib",
                "psycopg": "psycopg", "httptools": "httptools"}


@pytest.mark.parametrize("part", sorted(extras.EXTRAS))
def test_every_module_a_part_needs_is_in_its_extra(part: str) -> None:
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert part in optional, f"pyproject.toml has no [{part}] extra"
    names = {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0] for requirement in optional[part]}
    for module in extras.EXTRAS[part]:
        assert DISTRIBUTION[module] in names, f"[{part}] does not install {DISTRIBUTION[module]} ({module})"


def test_a_missing_module_names_the_extra_and_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRAS, "demo", ("openai", "surely_not_installed_module"))
    with pytest.raises(extras.MissingExtra) as caught:
        extras.require("demo", "meter demo")
    assert str(caught.value) == ("meter demo needs the [demo] extra: pip install 'meter[demo]' "
                                 "(missing: surely_not_installed_module)")
    extras.require("emulator")  # installed in the test environment: no error


def test_the_emulator_command_defaults_are_the_emulator_s() -> None:
    """``meter emulator`` spells its defaults without importing the emulator (an extra): they must agree."""
    import argparse

    from meter.apps.emulator import EmulatorConfig
    from meter.apps.emulator_command import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    config = EmulatorConfig()
    assert (args.api_key, args.region, args.latency, args.ttft, args.tokens_per_s) == (
        config.api_key, config.region, config.latency_s, config.ttft_s, config.tokens_per_s)
