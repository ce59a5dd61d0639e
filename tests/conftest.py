"""Fixtures shared across the suite: one real PostgreSQL server (started once, when asked), a database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer

_numbers = itertools.count()


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
