"""The JSON Schema of the price-table format (``pricing/price-table.schema.json``) is current and agrees with
the parser: every built-in table is valid under it, and the shapes the parser refuses, it refuses too."""

from __future__ import annotations

import datetime
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from meter.pricing import schema
from meter.pricing.book import builtin_table_paths

REPO = Path(__file__).resolve().parents[2]


def _json_ready(value: Any) -> Any:
    """TOML as an editor's schema check sees it: dates become date strings."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _validator() -> jsonschema.protocols.Validator:
    document = json.loads((REPO / "pricing" / "price-table.schema.json").read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(document)
    validator_class.check_schema(document)
    return validator_class(document, format_checker=validator_class.FORMAT_CHECKER)  # type: ignore[call-arg]


def test_the_committed_schema_is_the_generated_one() -> None:
    assert schema.main(["--check"]) == 0


@pytest.mark.parametrize("path", builtin_table_paths(), ids=lambda p: p.name)
def test_every_built_in_table_is_valid(path: Path) -> None:
    errors = list(_validator().iter_errors(_json_ready(tomllib.loads(path.read_text(encoding="utf-8")))))
    assert errors == []


GOOD = {"table": {"version": "1", "published": "2026-01-01"},
        "price": [{"model": "m", "deployment_type": "GlobalStandard", "source": "s", "input": "1.5"}]}


@pytest.mark.parametrize(("change", "why"), [
    (lambda t: t["price"][0].update(input=1.5), "a float price"),
    (lambda t: t["price"][0].update(colour="blue"), "an unknown field"),
    (lambda t: t["price"][0].pop("source"), "a missing source"),
    (lambda t: t["table"].update(published="2026-13-45"), "not a date"),
    (lambda t: t.update(prices=[]), "an unknown section"),
])
def test_the_schema_refuses_what_the_parser_refuses(change: Any, why: str) -> None:
    assert list(_validator().iter_errors(GOOD)) == []
    bad = json.loads(json.dumps(GOOD))
    change(bad)
    assert list(_validator().iter_errors(bad)), why
