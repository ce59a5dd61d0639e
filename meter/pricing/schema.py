"""A JSON Schema of the price-table format, for editors (completion and checks while writing a table).

Built from the same field sets the parser checks (``meter.pricing.table``) and the price kinds
(``KINDS``), so the schema cannot drift from what ``meter pricing validate`` accepts; the
repository keeps the result as ``pricing/price-table.schema.json`` (shipped with the tables):

    python -m meter.pricing.schema              # rewrite pricing/price-table.schema.json
    python -m meter.pricing.schema --check      # exit 1 if the committed file is stale

The schema describes the shape (fields, types, formats). What only the parser can tell (overlapping
date ranges, a correction of an unknown entry, unknown deployment types) is ``meter pricing
validate``'s. TOML dates are JSON Schema ``date`` strings (editors with TOML support, such as
Taplo / Even Better TOML, map them so: a ``#:schema`` comment at the top of a table selects it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meter.pricing import table
from meter.pricing.model import KINDS

SCHEMA_ID = "urn:meter:price-table"
FILE = Path(__file__).resolve().parents[2] / "pricing" / "price-table.schema.json"
"""Where the repository keeps it (a checkout's file; the installed copy is ``meter.pricing.tables``)."""

_PRICE = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$",
          "description": "USD per 1M tokens, as a quoted decimal string (floats lose precision)"}
_DATE = {"type": "string", "format": "date", "description": "a plain date like 2025-06-01"}
_TEXT = {"type": "string", "minLength": 1}
_TYPES: dict[str, dict[str, Any]] = {
    "version": _TEXT, "published": _DATE, "currency": {"const": "USD"}, "description": _TEXT,
    "id": _TEXT, "model": _TEXT, "deployment_type": _TEXT, "region": _TEXT, "effective_from": _DATE,
    "effective_until": _DATE, "above_input_tokens": {"type": "integer", "minimum": 0}, "source": _TEXT,
    "recorded_at": _DATE, "note": _TEXT, "corrects": _TEXT, "reason": _TEXT, "name": _TEXT,
    "same_price_snapshots": {"type": "boolean"}, **{kind: _PRICE for kind in KINDS},
}
"""The JSON type of every field any entry may have."""


def _entry(fields: frozenset[str], required: Sequence[str], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": False,
            "required": list(required), "properties": {name: _TYPES[name] for name in sorted(fields)}}


def json_schema() -> dict[str, Any]:
    """The schema (JSON Schema draft 2020-12)."""
    entries = {
        "table": _entry(table.TABLE_FIELDS, ("version", "published"), "the table's version and publication date"),
        "price": _entry(table.PRICE_FIELDS, ("model", "deployment_type", "source"),
                        "one price per model, deployment type, region and date range; at least one price kind"),
        "correction": _entry(table.CORRECTION_FIELDS, ("corrects", "recorded_at", "source"),
                             "a later fix of an entry's prices, recorded without rewriting history"),
        "model": _entry(table.MODEL_FIELDS, ("id",), "how served model names resolve to a priced model"),
        "alias": _entry(table.ALIAS_FIELDS, ("name", "model"), "another name for a priced model"),
    }
    properties: dict[str, Any] = {
        "table": entries["table"],
        "sources": {"type": "object", "description": "short names a `source` field may use",
                    "additionalProperties": _TEXT},
        "region_groups": {"type": "object", "description": "name -> regions, usable as a price's `region`",
                          "additionalProperties": {"type": "array", "minItems": 1, "items": _TEXT}},
    }
    for name in ("model", "alias", "price", "correction"):
        properties[name] = {"type": "array", "items": entries[name]}
    if set(properties) != table.TOP_LEVEL:
        raise RuntimeError(f"the schema's top level {sorted(properties)} is not the parser's {sorted(table.TOP_LEVEL)}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "meter price table", "type": "object", "additionalProperties": False,
            "required": ["table"], "properties": properties}


def text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meter.pricing.schema",
                                     description="Write (or check) pricing/price-table.schema.json.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    if args.check:
        if not FILE.is_file() or FILE.read_text(encoding="utf-8") != text():
            print(f"stale: {FILE} (run python -m meter.pricing.schema)", file=sys.stderr)
            return 1
        return 0
    FILE.write_text(text(), encoding="utf-8")
    print(FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
