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
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db.backends.sqlite3 import base

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


def write_lock(name: str) -> threading.Lock:
    """The lock of the database file ``name`` (one per file in this process)."""
    with _locks_guard:
        return _locks.setdefault(str(name), threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
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

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]  # private in django-stubs
        finally:
            self._release_write_lock()

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
