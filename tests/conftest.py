"""Fixtures shared across the suite: one real PostgreSQL server (started once, when asked), a database per test.

And a temporary folder of the run's own for every process the tests start: commands run as a user
runs them write their defaults there (``meter demo`` writes a ``$TMPDIR/meter-demo-*.sqlite`` each run),
so a run neither reads nor grows a file another run, or the user, left in the shared temporary folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer

_numbers = itertools.count()
_RUN_TMP = "METER_TESTS_TMPDIR"
"""Names the run's own temporary folder (set below, inherited by every process the tests start)."""


def pytest_configure(config: pytest.Config) -> None:
    tempfile.gettempdir()  # pytest's own folders stay where they are (it keeps the last runs for debugging)
    run_tmp = tempfile.mkdtemp(prefix="meter-tests-")
    os.environ[_RUN_TMP] = run_tmp
    os.environ["TMPDIR"] = run_tmp


def pytest_unconfigure(config: pytest.Config) -> None:
    run_tmp = os.environ.pop(_RUN_TMP, None)
    if run_tmp:
        shutil.rmtree(run_tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_database(pg: PostgresServer) -> str:
    """The URL of a new, empty database on the shared server."""
    import psycopg

    name = f"t{next(_numbers)}"
    with psycopg.connect(pg.url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new ledger on each backend in turn: a SQLite file, then a database on the PostgreSQL server
    (read it with ``tests.support.ledgers.query``)."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    url: str = request.getfixturevalue("pg_database")
    return url
