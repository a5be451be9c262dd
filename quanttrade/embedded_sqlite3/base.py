"""Django's SQLite backend, with the process's writers taking turns on a lock.

SQLite lets one connection write at a time. In embedded mode the web thread, the order threads
(orders.handoff) and the in-process Celery threads all write, each through its own connection;
a writer that finds the database locked is put to sleep by SQLite's busy handler and polls
again after 1, 2, 5, 10, 15, 20, 25 … ms. Under a fan-out most writers found it locked: a
10-account webhook spent more time in those sleeps than in its work (docs/benchmarks-speed.md,
round 4). Here the writers of one process wait on a lock instead, and the next one starts the
moment the previous one commits.

What takes the lock: every transaction (``atomic``: they are ``BEGIN IMMEDIATE``, so each
holds SQLite's write lock from its start anyway) until its commit or rollback, and every write
statement run outside a transaction. Reads never wait (WAL readers do not block). Writers of
other processes (a management command run beside ``serve``) still meet SQLite's own locking,
and so does a writer that waited ``WRITE_LOCK_WAIT_SECONDS`` for the lock: it then goes ahead
and SQLite's busy timeout applies, as without this backend.

Connections are also kept for reuse. Under ASGI every request has connections of its own, and
``CONN_MAX_AGE`` 0 closes them when it ends: each request opened the database anew, and a new
SQLite connection costs ~0.9 ms of CPU before its first statement (Django's functions
registered, the pragmas, the schema read again) — on every webhook, a large part of its accept
(docs/benchmarks-speed.md, round 30). A connection Django closes outside any transaction goes to
this process's idle list for the file (at most ``IDLE_KEPT``) and the next connection opened
takes it instead; one closed inside a transaction is really closed, and a child process (after a
fork) never takes its parent's. Django's test-database creation closes the kept connections
before it removes or replaces a file (see :class:`DatabaseCreation`). As with any SQLite
database, never replace the file under a running process: its open connections' write-ahead log
would be read into the new file.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from django.db.backends.sqlite3 import base, creation

log = logging.getLogger("quanttrade.db")

WRITE_LOCK_WAIT_SECONDS = 60.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

# Django rewrites every statement's "%s" placeholders to SQLite's "?" with a regular expression,
# on every execution: ~0.1 ms for the worker's 100-column read of an order, ~5 ms for a
# 1,000-row insert. The statements a process runs repeat (the ORM's and quanttrade/prepared.py's
# SQL), so each is rewritten once and looked up after that (a str keeps its hash). Bounded by
# the total length kept: past it the table starts again.
_QMARK_KEPT_CHARS = 8_000_000
_qmark: dict[str, str] = {}
_qmark_chars = 0

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

IDLE_KEPT = 16
# Per database file: closed connections kept for reuse (this process's: a forked child forgets
# its parent's, below).
_idle: dict[str, list[Any]] = {}
_idle_guard = threading.Lock()


def idle_connections_close() -> None:
    """Close the connections kept for reuse (every database file of this process)."""
    with _idle_guard:
        kept = [entry for entries in _idle.values() for entry in entries]
        _idle.clear()
    for connection in kept:
        connection.close()


def _forget_after_fork() -> None:
    # A child must never use its parent's SQLite connections (nor close them under it).
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
# Closed for real at exit: the last connection's close checkpoints the write-ahead log and removes
# it, as when Django closed them itself.
atexit.register(idle_connections_close)


class DatabaseCreation(creation.DatabaseCreation):
    """Django's test-database creation, closing the kept connections before it removes or
    replaces a database file: a connection left open on a removed file keeps its write-ahead
    log, which SQLite would then read into a new database created at the same path."""

    def _create_test_db(self, *args: Any, **kwargs: Any) -> Any:
        idle_connections_close()
        return super()._create_test_db(*args, **kwargs)  # type: ignore[misc]  # private in django-stubs

    def _clone_test_db(self, *args: Any, **kwargs: Any) -> Any:
        idle_connections_close()
        return super()._clone_test_db(*args, **kwargs)  # type: ignore[misc]  # private in django-stubs

    def _destroy_test_db(self, *args: Any, **kwargs: Any) -> Any:
        idle_connections_close()
        return super()._destroy_test_db(*args, **kwargs)  # type: ignore[misc]  # private in django-stubs


def write_lock(name: str) -> threading.Lock:
    """The lock of the database file ``name`` (one per file in this process)."""
    with _locks_guard:
        return _locks.setdefault(str(name), threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = DatabaseCreation
    # The methods overridden here are Django's own hooks for BEGIN, COMMIT, ROLLBACK and close
    # (django/db/backends/sqlite3/base.py, base/base.py); django-stubs does not declare them.
    _holds_write_lock = False

    def _acquire_write_lock(self) -> None:
        lock = write_lock(self.settings_dict["NAME"])
        if lock.acquire(timeout=WRITE_LOCK_WAIT_SECONDS):
            self._holds_write_lock = True
        else:
            log.warning("SQLite write lock not free after %ss: writing anyway", WRITE_LOCK_WAIT_SECONDS)

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            write_lock(self.settings_dict["NAME"]).release()

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_write_lock()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # private in django-stubs
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]  # private in django-stubs
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]  # private in django-stubs
        finally:
            self._release_write_lock()

    def get_new_connection(self, conn_params: Any) -> Any:
        with _idle_guard:
            kept = _idle.get(str(self.settings_dict["NAME"]))
            if kept:
                return kept.pop()
        return super().get_new_connection(conn_params)

    def _close(self) -> Any:
        try:
            if self._keep_idle():
                return None
            return super()._close()  # type: ignore[misc]  # private in django-stubs
        finally:
            self._release_write_lock()

    def _keep_idle(self) -> bool:
        """Hand the connection to the idle list instead of closing it, when it is safe to reuse:
        no transaction open on it (at the database or in Django's atomic blocks), a file
        database, room in the list."""
        connection = self.connection
        if connection is None or self.in_atomic_block or connection.in_transaction or self.is_in_memory_db():
            return False
        with _idle_guard:
            kept = _idle.setdefault(str(self.settings_dict["NAME"]), [])
            if len(kept) >= IDLE_KEPT:
                return False
            kept.append(connection)
        return True

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=_Cursor)
        cursor.wrapper = self
        return cursor


class _Cursor(base.SQLiteCursorWrapper):
    """Takes the write lock around a write statement run outside a transaction."""

    wrapper: DatabaseWrapper

    def _autocommit_write(self, query: str) -> bool:
        wrapper = self.wrapper
        return not wrapper._holds_write_lock and query.lstrip()[:7].upper().startswith(_WRITES)

    def execute(self, query: str, params: Any = None) -> Any:
        return self._locked_if_writing(query, super().execute, query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        return self._locked_if_writing(query, super().executemany, query, param_list)

    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        global _qmark_chars
        if param_names is not None:  # "pyformat" style: rare here, not kept
            return str(super().convert_query(query, param_names=param_names))
        converted = _qmark.get(query)
        if converted is None:
            converted = str(super().convert_query(query))
            if _qmark_chars + len(query) > _QMARK_KEPT_CHARS:
                _qmark.clear()
                _qmark_chars = 0
            _qmark[query] = converted
            _qmark_chars += len(query)
        return converted

    def _locked_if_writing(self, query: str, run: Any, *args: Any) -> Any:
        if not self._autocommit_write(query):
            return run(*args)
        self.wrapper._acquire_write_lock()
        try:
            return run(*args)
        finally:
            self.wrapper._release_write_lock()
