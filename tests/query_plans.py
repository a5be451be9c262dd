"""How the database reaches a query's rows, for tests that pin an index to a query: the index
is checked on every database the suite runs on, the plan where it is deterministic (SQLite's;
PostgreSQL's planner chooses by its statistics)."""

from __future__ import annotations

from typing import Any

from django.db import connection


def index_columns(table: str, name: str) -> list[str] | None:
    """The columns of index ``name`` on ``table``, or None when there is no such index."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table).get(name)
    return list(found["columns"]) if found and found.get("index") else None


def sqlite_plan(sql: str, params: list[Any] | tuple[Any, ...]) -> list[str] | None:
    """SQLite's plan of ``sql`` (one line per step), or None on another database."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall()]
