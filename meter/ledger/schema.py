"""The ledger schema, versioned: one ``calls`` row per record, one ``costs`` row per (call, price version).

Money is TEXT holding the exact decimal string (never a float). Costs have their own table
keyed by (call id, table version), so a later re-pricing adds rows and never overwrites what
was reported at the time. ``meta`` holds the schema version; a ledger written by a newer
meter is refused rather than half understood. Documented in docs/ledger.md.
"""

from __future__ import annotations

from meter.core.record import USAGE_KINDS
from meter.core.units import UNIT_KINDS

SCHEMA_VERSION = 1

TOKEN_COLUMNS = tuple(kind.name for kind in USAGE_KINDS)
"""A column per usage kind of the catalogue (``meter.core.usage_kinds``), named as the kind."""

UNIT_COLUMNS = (*(kind.name for kind in UNIT_KINDS), "image_variant")
"""A column per unit kind of ``meter.core.units`` (NULL for a call billed by tokens), and the image variant."""

ADDED_COLUMNS: dict[str, tuple[str, str]] = {
    "requested_service_tier": ("TEXT", "text"),
    "service_tier": ("TEXT", "text"),
    "service_tier_assumed": ("INTEGER", "boolean"),
    **{kind.name: (kind.sqlite_type, kind.postgres_type) for kind in UNIT_KINDS},
    "image_variant": ("TEXT", "text"),
    "budgets": ("TEXT", "text"),
}
"""Columns of ``calls`` added after the first release of schema version 1, with their SQLite and PostgreSQL
types. They are additive (NULL in older rows; an older meter writes its rows without them), so they bear no
version of their own: a ledger gains them when opened for writing or by ``meter ledger migrate``. ``budgets`` is
the JSON list of the budgets a call was charged to (``CallRecord.budgets``; NULL when none)."""

CALL_COLUMNS = (
    "id", "started_at", "duration_s", "time_to_first_token_s", "api", "operation", "stream", "provider",
    "server_address", "server_port", "deployment", "deployment_type", "region", "request_model", "response_model",
    "response_id", "api_version", "status_code", "outcome", "error_type", "error_code", *TOKEN_COLUMNS,
    "usage_source", "repeat", "provisional", "supersedes_estimate", "attempt", "correlation_id", "trace_id",
    "span_id", "azure_region", "apim_request_id", "request_id", "client_request_id", "attributes", *ADDED_COLUMNS,
)

INT32_COLUMNS = frozenset({"server_port", "status_code", "attempt"})
"""Integer columns that PostgreSQL keeps as ``integer`` (32 bits); every other integer column holds 64 bits."""

COST_COLUMNS = ("call_id", "table_version", "recorded_at", "reported", "current", "total", "total_nano", "total_atto",
                "currency", "basis", "estimated", "model", "deployment_type", "region", "amounts", "unit_prices",
                "row_ids", "reason")
"""``reported`` is 1 on the cost written with the call (what was reported then); ``current`` is 1 on
the latest pricing of the call (a re-pricing moves it), so a report joins one row per call by flag."""
"""``total_nano`` + ``total_atto`` are the total split into whole 1e-9 USD and the rest in 1e-18 USD:
two integers SQL can ``SUM`` exactly (a cost has at most 18 decimal places: a price has at most 12,
per 1M tokens), so reports add money in the database without floats."""

V1 = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    time_to_first_token_s REAL,
    api TEXT NOT NULL, operation TEXT NOT NULL, stream INTEGER NOT NULL, provider TEXT NOT NULL,
    server_address TEXT NOT NULL, server_port INTEGER,
    deployment TEXT, deployment_type TEXT, region TEXT, request_model TEXT, response_model TEXT,
    response_id TEXT, api_version TEXT, status_code INTEGER, outcome TEXT NOT NULL, error_type TEXT, error_code TEXT,
    {", ".join(f"{c} INTEGER" for c in TOKEN_COLUMNS)},
    usage_source TEXT, repeat INTEGER NOT NULL, provisional INTEGER NOT NULL, supersedes_estimate INTEGER NOT NULL,
    attempt INTEGER, correlation_id TEXT, trace_id TEXT, span_id TEXT,
    azure_region TEXT, apim_request_id TEXT, request_id TEXT, client_request_id TEXT,
    attributes TEXT NOT NULL{"".join(f", {name} {types[0]}" for name, types in ADDED_COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_deployment ON calls (deployment, started_at);
CREATE TABLE IF NOT EXISTS costs (
    call_id TEXT NOT NULL REFERENCES calls (id),
    table_version TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    reported INTEGER NOT NULL, current INTEGER NOT NULL,
    total TEXT, total_nano INTEGER, total_atto INTEGER,
    currency TEXT NOT NULL, basis TEXT NOT NULL, estimated INTEGER NOT NULL,
    model TEXT, deployment_type TEXT, region TEXT,
    amounts TEXT NOT NULL, unit_prices TEXT NOT NULL, row_ids TEXT NOT NULL, reason TEXT,
    PRIMARY KEY (call_id, table_version)
);
"""
"""Schema version 1 (SQLite)."""


def added_columns(table: str, missing: list[str]) -> list[tuple[str, str, str]]:
    """The missing columns a ledger gains when opened for writing (or by ``meter ledger migrate``), each with
    its SQLite and PostgreSQL type: those of usage kinds added to the catalogue since the ledger was made, and
    ``ADDED_COLUMNS``. NULL in the rows written before, with no schema version of their own. Any other missing
    column means the ledger is not this meter's."""
    if table != "calls":
        return []
    return [(column, *ADDED_COLUMNS[column]) if column in ADDED_COLUMNS else (column, "INTEGER", "bigint")
            for column in missing if column in TOKEN_COLUMNS or column in ADDED_COLUMNS]
