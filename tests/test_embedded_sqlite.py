"""Embedded mode's SQLite backend (quanttrade/embedded_sqlite3): the writers of one process take
turns on a lock instead of SQLite's sleep-and-poll busy handler.

Each test opens its own database file under an alias of its own and writes from two threads while a
transaction is open. SQLite's busy timeout is 0 here, so a writer that reached SQLite while the
other held its write lock would fail at once with "database is locked": with the lock it waits
its turn and succeeds. The same scenario on Django's own backend shows the failure, so these
tests can fail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from tests.forked import holds_in_a_forked_child

HOLD_SECONDS = 0.3


@pytest.fixture
def database(tmp_path: Path, django_db_blocker: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """An alias to a fresh SQLite file with one table, on the engine the test asks for."""
    engine = getattr(request, "param", "quanttrade.embedded_sqlite3")
    alias = "embedded_probe"
    config = {
        "ENGINE": engine,
        "NAME": str(tmp_path / "probe.sqlite3"),
        "OPTIONS": {
            "timeout": 0,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
    connections.settings[alias] = connections.configure_settings({"default": dict(config), alias: config})[
        alias
    ]
    with django_db_blocker.unblock():
        with connections[alias].cursor() as cursor:
            cursor.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, writer TEXT)")
        try:
            yield alias
        finally:
            from quanttrade.embedded_sqlite3.base import idle_connections_close

            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]
            idle_connections_close()


def _hold_a_transaction(alias: str, started: threading.Event, done: threading.Event) -> None:
    """Open a transaction, write, keep it open HOLD_SECONDS, write again, commit."""
    try:
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cursor:
                cursor.execute("INSERT INTO probe (writer) VALUES ('holder')")
                started.set()
                done.wait(HOLD_SECONDS)
                cursor.execute("INSERT INTO probe (writer) VALUES ('holder')")
    finally:
        started.set()
        connections[alias].close()


def _writers(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT writer FROM probe ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def _holder(database: str) -> tuple[threading.Thread, threading.Event]:
    """A thread holding a transaction open (see _hold_a_transaction), started and inside it."""
    started, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_a_transaction, args=(database, started, done))
    holder.start()
    started.wait(5)
    return holder, done


def test_a_write_outside_a_transaction_waits_for_the_open_one(database: str) -> None:
    holder, _done = _holder(database)
    with connections[database].cursor() as cursor:
        cursor.execute("INSERT INTO probe (writer) VALUES ('other')")
    holder.join(5)
    assert _writers(database) == ["holder", "holder", "other"]


def test_a_transaction_waits_for_the_open_one(database: str) -> None:
    holder, _done = _holder(database)
    with transaction.atomic(using=database), connections[database].cursor() as cursor:
        cursor.execute("INSERT INTO probe (writer) VALUES ('other')")
    holder.join(5)
    assert _writers(database) == ["holder", "holder", "other"]


def test_reads_do_not_wait_for_the_open_transaction(database: str) -> None:
    holder, done = _holder(database)
    try:
        assert _writers(database) == []  # the holder's first row is not committed yet
        assert holder.is_alive()
    finally:
        done.set()
        holder.join(5)


def test_a_failed_transaction_lets_the_next_writer_in(database: str) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=database):
        with connections[database].cursor() as cursor:
            cursor.execute("INSERT INTO probe (writer) VALUES ('rolled back')")
        _ = 1 / 0
    result: list[Any] = []

    def write() -> None:
        try:
            with connections[database].cursor() as cursor:
                cursor.execute("INSERT INTO probe (writer) VALUES ('next')")
            result.append("ok")
        except Exception as exc:  # the assertion below says what happened
            result.append(exc)
        finally:
            connections[database].close()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(5)
    assert result == ["ok"] and _writers(database) == ["next"]


@pytest.mark.parametrize("database", ["django.db.backends.sqlite3"], indirect=True)
def test_without_the_lock_sqlite_refuses_the_second_writer(database: str) -> None:
    holder, done = _holder(database)
    try:
        with pytest.raises(OperationalError, match="locked"), connections[database].cursor() as cursor:
            cursor.execute("INSERT INTO probe (writer) VALUES ('other')")
    finally:
        done.set()
        holder.join(5)


def test_embedded_mode_and_a_sqlite_database_url_use_the_backend(tmp_path: Path) -> None:
    from tests.test_settings_env import start

    embedded = start(tmp_path, "{0.DATABASES[default][ENGINE]}")
    assert embedded.returncode == 0, embedded.stderr
    assert embedded.stdout.strip() == "quanttrade.embedded_sqlite3"
    url = start(
        tmp_path,
        "{0.DATABASES[default][ENGINE]}",
        DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite3'}",
        QT_ALLOW_LOCAL_SECRETS="1",
    )
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip() == "quanttrade.embedded_sqlite3"


def test_statements_are_rewritten_once_and_as_django_rewrites_them(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "%s" to "?" rewrite is kept per statement text (and bounded), and gives exactly
    Django's rewrite: a literal "%%" becomes "%", named parameters take Django's own path."""
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    from quanttrade.embedded_sqlite3 import base

    monkeypatch.setattr(base, "_qmark", {})
    monkeypatch.setattr(base, "_qmark_chars", 0)
    statement = "INSERT INTO probe (writer) VALUES (%s || '%%' || %s)"
    with connections[database].cursor() as cursor:
        for writer in ("a", "b"):
            cursor.execute(statement, [writer, "!"])
        cursor.execute("INSERT INTO probe (writer) VALUES (%(w)s)", {"w": "named"})
        raw = cursor.cursor
        assert raw.convert_query(statement) is raw.convert_query(statement)  # kept, not redone
        assert raw.convert_query(statement) == SQLiteCursorWrapper.convert_query(raw, statement)
    assert _writers(database) == ["a%!", "b%!", "named"]
    assert base._qmark == {statement: "INSERT INTO probe (writer) VALUES (? || '%' || ?)"}

    # Past the bound, the table starts again rather than growing.
    monkeypatch.setattr(base, "_QMARK_KEPT_CHARS", len(statement) + 10)
    other = "SELECT writer FROM probe WHERE writer = %s"
    with connections[database].cursor() as cursor:
        cursor.execute(other, ["a"])
    assert list(base._qmark) == [other]


# --- connections kept for reuse ------------------------------------------------------------------


def _in_a_thread(work: Any) -> Any:
    """Run ``work()`` on a new thread (its own connections, as an ASGI request's) and return it."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    if errors:
        raise errors[0]
    return out[0]


def _open_raw(alias: str) -> Any:
    wrapper = connections[alias]
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM probe")
    return wrapper.connection


def test_a_closed_connection_is_taken_by_the_next_request_instead_of_a_new_one(database: str) -> None:
    """A request's connection closed at its end (CONN_MAX_AGE 0) is the next request's: the same
    SQLite connection, working, no new one opened."""
    import sqlite3

    opened: list[Any] = []
    real_connect = sqlite3.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_connect(*args, **kwargs)

    from quanttrade.embedded_sqlite3.base import idle_connections_close

    first = _in_a_thread(lambda: _open_raw(database))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3.dbapi2, "connect", counting)  # what Django's backend calls
        second = _in_a_thread(lambda: _open_raw(database))
        _in_a_thread(
            lambda: connections[database].cursor().execute("INSERT INTO probe (writer) VALUES ('reused')")
        )
        assert second is first and opened == []
        idle_connections_close()  # none kept: the next one is opened (the count counts)
        assert _in_a_thread(lambda: _open_raw(database)) is not first and len(opened) == 1
    assert _writers(database) == ["reused"]


def test_a_connection_closed_inside_a_transaction_is_closed_for_real(database: str) -> None:
    """Closed while a transaction is open on it (at SQLite, or in Django's atomic block): never
    handed on, so no later request inherits the transaction; its writes are rolled back."""
    import sqlite3

    wrapper = connections[database]
    raw = _open_raw(database)
    raw.execute("BEGIN")
    raw.execute("INSERT INTO probe (writer) VALUES ('open at the database')")
    wrapper.close()
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")

    with transaction.atomic(using=database):
        with wrapper.cursor() as cursor:
            cursor.execute("INSERT INTO probe (writer) VALUES ('in atomic')")
        in_atomic = wrapper.connection
        wrapper.close()
    with pytest.raises(sqlite3.ProgrammingError):
        in_atomic.execute("SELECT 1")
    assert _writers(database) == []
    assert _in_a_thread(lambda: _open_raw(database)) not in (raw, in_atomic)


def test_at_most_idle_kept_connections_are_kept(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from quanttrade.embedded_sqlite3 import base

    monkeypatch.setattr(base, "IDLE_KEPT", 2)
    together = threading.Barrier(3)

    def hold() -> Any:
        raw = _open_raw(database)
        together.wait(5)  # the three are open at once
        return raw

    held: list[Any] = []
    threads = [threading.Thread(target=lambda: held.append(_in_a_thread(hold))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    name = connections[database].settings_dict["NAME"]
    kept = list(base._idle[name])
    assert len(held) == 3 and len(kept) == 2 and set(map(id, kept)) < set(map(id, held))
    (closed,) = [raw for raw in held if all(raw is not k for k in kept)]
    with pytest.raises(sqlite3.ProgrammingError):
        closed.execute("SELECT 1")


def test_a_forked_child_never_takes_its_parents_kept_connections(database: str) -> None:
    """A child process (a fork) opens connections of its own: its parent's kept ones stay the
    parent's, used by it after the child is gone."""
    from quanttrade.embedded_sqlite3 import base

    first = _in_a_thread(lambda: _open_raw(database))
    name = connections[database].settings_dict["NAME"]
    assert any(kept is first for kept in base._idle[name])

    def opens_its_own() -> object:
        wrapper = connections[database]
        fresh = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            return (
                not base._idle
                and fresh is not first
                and fresh.execute("SELECT count(*) FROM probe").fetchone()
            )
        finally:
            fresh.close()

    assert holds_in_a_forked_child(opens_its_own)
    assert _in_a_thread(lambda: _open_raw(database)) is first  # still the parent's, and working


def test_the_test_database_is_removed_only_after_the_kept_connections_are_closed(database: str) -> None:
    """A connection left open on a removed file keeps its write-ahead log, which SQLite would read
    into the next database made at the same path: the creation closes the kept ones first."""
    import os
    import sqlite3

    raw = _in_a_thread(lambda: _open_raw(database))
    name = connections[database].settings_dict["NAME"]
    connections[database].close()
    connections[database].creation._destroy_test_db(name, verbosity=0)
    assert not os.path.exists(name) and not os.path.exists(name + "-wal")
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")
