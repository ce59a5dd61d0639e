"""The PostgreSQL ledger: one database shared by any number of processes and hosts (``[postgres]`` extra).

The same rows as the SQLite ledger (``schema``), with PostgreSQL types: times are
``timestamptz``, money ``numeric`` (exact, summed exactly in SQL). ``calls`` and ``costs``
are partitioned by the month the call started, so retention drops whole partitions
instead of deleting rows; a batch creates the partitions it needs. Inserts are
``ON CONFLICT DO NOTHING`` on the record's id: several writers, and a batch sent again
after an error, never duplicate a row. A partition dropped under a running writer (``meter
ledger prune``) is made again by the next batch that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from typing import Any

from meter.extras import require
from meter.ledger.dialect import POSTGRES, attribute_indexes
from meter.ledger.errors import LedgerError
from meter.ledger.schema import ADDED_COLUMNS, CALL_COLUMNS, COST_COLUMNS, SCHEMA_VERSION, TOKEN_COLUMNS, added_columns

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id text NOT NULL, started_at timestamptz NOT NULL, duration_s double precision NOT NULL,
    time_to_first_token_s double precision, api text NOT NULL, operation text NOT NULL, stream boolean NOT NULL,
    provider text NOT NULL, server_address text NOT NULL, server_port integer, deployment text,
    deployment_type text, region text, request_model text, response_model text, response_id text,
    api_version text, status_code integer, outcome text NOT NULL, error_type text, error_code text,
    {", ".join(f"{c} bigint" for c in TOKEN_COLUMNS)},
    usage_source text, repeat boolean NOT NULL, provisional boolean NOT NULL, supersedes_estimate boolean NOT NULL,
    attempt integer, correlation_id text, trace_id text, span_id text, azure_region text, apim_request_id text,
    request_id text, client_request_id text, attributes jsonb NOT NULL,
    {"".join(f"{name} {types[1]}, " for name, types in ADDED_COLUMNS.items())}
    PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX IF NOT EXISTS calls_started_at ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_deployment ON calls (deployment, started_at);
CREATE TABLE IF NOT EXISTS costs (
    call_id text NOT NULL, call_started_at timestamptz NOT NULL, table_version text NOT NULL,
    recorded_at timestamptz NOT NULL, reported boolean NOT NULL, current boolean NOT NULL, total numeric,
    total_nano bigint, total_atto bigint, currency text NOT NULL, basis text NOT NULL, estimated boolean NOT NULL,
    model text, deployment_type text, region text, amounts jsonb NOT NULL, unit_prices jsonb NOT NULL,
    row_ids jsonb NOT NULL, reason text,
    PRIMARY KEY (call_id, table_version, call_started_at)
) PARTITION BY RANGE (call_started_at);
"""

_abandoned: list[Any] = []
"""Connections a forked child inherited (see ``PostgresLedger.after_fork_in_child``)."""

_BOOLEAN_CALLS = {"stream", "repeat", "provisional", "supersedes_estimate", "service_tier_assumed"}
_BOOLEAN_COSTS = {"reported", "current", "estimated"}


def _month(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first.replace(year=first.year + 1, month=1) if first.month == 12
                   else first.replace(month=first.month + 1))


def connect(url: str, name: str, **options: Any) -> Any:
    """A psycopg connection (autocommit) to ``url``; a ``LedgerError`` naming ``name`` (no password) if it fails.
    The writer and the ledger tools both open theirs here."""
    require("postgres", "a PostgreSQL ledger")
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=True, **options)
    except psycopg.Error as exc:
        raise LedgerError(name, f"cannot be opened ({type(exc).__name__}: {str(exc).strip().splitlines()[0]})"
                          ) from None


class PostgresLedger:
    """One PostgreSQL ledger; the connection is the writer thread's (a pool of one per process)."""

    def __init__(self, url: str, name: str, index_keys: tuple[str, ...] = ()) -> None:
        self.name = name
        self._url = url
        self._db = connect(url, name)
        import psycopg

        try:
            self._check_or_create(index_keys)
        except psycopg.Error as exc:
            self._db.close()
            raise LedgerError(name, f"is not a usable ledger ({str(exc).strip().splitlines()[0]})") from None
        self._months: set[date] = set()
        call_values = ", ".join("%s" for _ in CALL_COLUMNS)
        cost_columns = ("call_started_at", *COST_COLUMNS)
        self._insert_call = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({call_values}) "
                             "ON CONFLICT DO NOTHING")
        self._insert_cost = (f"INSERT INTO costs ({', '.join(cost_columns)}) "
                             f"VALUES ({', '.join('%s' for _ in cost_columns)}) ON CONFLICT DO NOTHING")
        self._bool_calls = [i for i, c in enumerate(CALL_COLUMNS) if c in _BOOLEAN_CALLS]
        self._bool_costs = [i for i, c in enumerate(COST_COLUMNS) if c in _BOOLEAN_COSTS]

    def _check_or_create(self, index_keys: tuple[str, ...]) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(7150)")  # writers starting at once create it once
            self._db.execute(DDL)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', %s)", (str(SCHEMA_VERSION),))
            elif not str(row[0]).isdigit() or int(row[0]) > SCHEMA_VERSION:
                raise LedgerError(self.name, f"has schema version {row[0]}, newer than this meter's "
                                             f"{SCHEMA_VERSION}: upgrade meter to use it")
            have = {row[0] for row in self._db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'calls'")}
            for column, _, postgres_type in added_columns("calls", [c for c in CALL_COLUMNS if c not in have]):
                self._db.execute(f"ALTER TABLE calls ADD COLUMN IF NOT EXISTS {column} {postgres_type}")
            for ddl in attribute_indexes(POSTGRES, index_keys):
                self._db.execute(ddl)

    def _partitions(self, days: set[date]) -> None:
        for day in days:
            first, after = _month(day)
            if first in self._months:
                continue
            suffix = f"y{first.year}m{first.month:02d}"
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(7151)")
                for table in ("calls", "costs"):
                    self._db.execute(f"CREATE TABLE IF NOT EXISTS {table}_{suffix} PARTITION OF {table} "
                                     f"FOR VALUES FROM ('{first.isoformat()}') TO ('{after.isoformat()}')")
            self._months.add(first)

    @property
    def data_errors(self) -> tuple[type[BaseException], ...]:
        """Errors of a row, not of the database: values PostgreSQL refuses (out of range, NUL in text),
        values psycopg cannot send (lone surrogates)."""
        import psycopg

        return (psycopg.DataError, psycopg.IntegrityError, OverflowError, ValueError, TypeError)

    def ping(self) -> None:
        """Raises unless the database answers."""
        self._connection().execute("SELECT 1")

    def after_fork_in_child(self) -> None:
        """A forked child must not speak on the parent's socket, nor close it (closing sends the server a
        goodbye that ends the parent's session): the child's copy of the socket is pointed at /dev/null,
        the inherited connection object kept forever, and the child connects anew when it first writes."""
        inherited = self._db
        _abandoned.append(inherited)
        try:
            fd = inherited.pgconn.socket
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
        except Exception:
            pass
        self._db = None
        self._months = set()

    def _connection(self) -> Any:
        """The open connection, made again when the server dropped it (a restart, a failover): the writer
        retries a failed batch, and the retry then finds a live connection instead of the dead one."""
        if self._db is None:
            self._db = connect(self._url, self.name)
        elif self._db.broken or self._db.closed:
            self._db.close()
            self._db = connect(self._url, self.name)
        return self._db

    def write(self, calls: Sequence[tuple[Any, ...]], costs: Sequence[tuple[Any, ...]]) -> None:
        import psycopg

        db = self._connection()
        started = {row[0]: row[1] for row in calls}
        months = {date.fromisoformat(row[1][:10]) for row in calls}
        self._partitions(months)
        call_rows = [self._booleans(row, self._bool_calls) for row in calls]
        cost_rows = [(started[row[0]], *self._booleans(row, self._bool_costs)) for row in costs]
        try:
            self._insert(db, call_rows, cost_rows)
        except psycopg.errors.CheckViolation as exc:
            if "no partition" not in str(exc):
                raise
            self._months.clear()  # dropped under this writer (a prune): make them again, once
            self._partitions(months)
            self._insert(db, call_rows, cost_rows)

    def _insert(self, db: Any, call_rows: list[tuple[Any, ...]], cost_rows: list[tuple[Any, ...]]) -> None:
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(self._insert_call, call_rows)
            if cost_rows:
                cursor.executemany(self._insert_cost, cost_rows)

    @staticmethod
    def _booleans(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
        values = list(row)
        for i in positions:
            values[i] = bool(values[i])
        return tuple(values)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
