"""Hot-path statements written once per database instead of compiled by the ORM on every call:
a SELECT (:class:`PreparedSelect`), an UPDATE (:class:`PreparedUpdate`) and a fan-out's INSERT
(:func:`bulk_insert`). What follows describes the SELECT; the others say what they do below.

A SELECT the ORM compiles once per database, executed many times with new parameters.

Django compiles a queryset to SQL on every execution. For a query over four wide tables
(an order with its account and strategy via ``select_related``, plus an EXISTS) that compile
costs ~2 ms of CPU, eight times the query itself on SQLite: on the worker's path to the venue
it was the largest single cost (docs/benchmarks-speed.md). :class:`PreparedSelect` keeps what
the compile produced — the SQL, its parameters, the column layout — and per execution only
substitutes the parameters that vary, runs the SQL on the calling thread's connection, and
builds the model instances the way ``QuerySet`` does (``ModelIterable``): the same objects,
related objects cached as ``select_related`` caches them, annotations as attributes.

The varying parameters are found by compiling twice with different marker values: a position
whose value changes belongs to that argument. A query whose SQL itself changes with an argument
(an ``__in`` list of varying length, a ``None`` that becomes ``IS NULL``) cannot be prepared and
is refused at the first execution (``PreparedQueryError``): keep such arguments fixed.

Only for hot paths, each pinned by a test comparing its result with the plain queryset's.

On PostgreSQL the three also skip the server's parse and plan (``statement_cursor``): Django's
psycopg backend binds parameters on the client, so every execution arrives as new SQL text and
is planned again (1.2 ms of planning for 0.12 ms of execution for the worker's read of an
account with 20,000 orders). These statements are bound on the server instead and prepared on
their connection the first time they run there; the connection pool keeps connections, so a
statement is planned once per pooled connection. ``DATABASE_PREPARED_STATEMENTS = False``
(``DB_PREPARED_STATEMENTS=false``) turns it off, e.g. behind a PgBouncer in transaction mode
that does not keep prepared statements (docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import functools
import itertools
import operator
import re
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connections, transaction
from django.db.models import DateField, DateTimeField, Field, ForeignObject, Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)


# A statement with more parameters than this is not prepared (none of this module's statements
# has that many on PostgreSQL, whose multi-row INSERT takes an array a column).
PREPARE_MAX_PARAMS = 2_000


def binds_on_server(connection: Any, *, prepare: bool = True) -> bool:
    """Whether ``statement_cursor(connection, prepare=prepare)`` binds and prepares on the server."""
    return (
        prepare
        and connection.vendor == "postgresql"
        and settings.DATABASE_PREPARED_STATEMENTS
        and not connection.queries_logged
    )


def statement_cursor(connection: Any, *, prepare: bool = True) -> Any:
    """A cursor for one of this module's statements on ``connection``.

    On PostgreSQL with DATABASE_PREPARED_STATEMENTS (and ``prepare``): a cursor that binds on
    the server, on a connection that prepares each statement the first time it runs there
    (psycopg keeps the last 100 per connection). Only these cursors bind on the server: the
    rest of Django's use client-side binding, which never prepares, whatever the connection's
    threshold. Otherwise, and on SQLite: ``connection.cursor()``. Either way the cursor is
    Django's wrapper: database errors are Django's, and execute wrappers run. While queries are
    logged (DEBUG, ``CaptureQueriesContext``, ``assertNumQueries``) the statement is bound on
    the client as before, so the log shows it with its values (Django cannot show a prepared
    execution's)."""
    if not binds_on_server(connection, prepare=prepare):
        return connection.cursor()
    # What connection.cursor() does (BaseDatabaseWrapper._cursor, the backend's create_cursor),
    # with a server-binding cursor as Django's when OPTIONS["server_side_binding"] is set, which
    # takes its SQL with $n placeholders (``_dollar_cursor_class``).
    # Imported here: embedded mode (SQLite) never loads the PostgreSQL backend.
    from django.db.backends.postgresql.psycopg_any import register_tzloader  # noqa: PLC0415
    from psycopg.postgres import types as pg_types  # noqa: PLC0415
    from psycopg.pq import Format  # noqa: PLC0415

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold != 0:
        raw.prepare_threshold = 0  # prepare on the first execution (Django sets None: never)
    with connection.wrap_database_errors:
        cursor = _dollar_cursor_class()(raw)
        tzloader = raw.adapters.get_loader(pg_types["timestamptz"].oid, Format.TEXT)
        if connection.timezone != tzloader.timezone:
            register_tzloader(connection.timezone, cursor)
        return connection._prepare_cursor(cursor)


@functools.cache
def _dollar_cursor_class() -> type:
    """Django's server-binding cursor (``ServerBindingCursor``: its ``CursorMixin`` on a psycopg
    ``Cursor``) on psycopg's ``RawCursor`` instead, which takes $n placeholders as they are,
    and whose ``execute`` turns this module's %s placeholders into $n once per statement.

    psycopg parses each statement's %s placeholders on every execution when the statement is
    longer than 4,096 characters or has more than 50 parameters (it caches the parse only
    below both), which this module's wide statements are: the intake's INSERT of a webhook with
    its orders, the task's read of its orders with their account and strategy. The parse was
    5-7 % of a web process's CPU per webhook (docs/benchmarks-speed.md, round 28)."""
    from django.db.backends.postgresql.base import CursorMixin  # noqa: PLC0415
    from psycopg import RawCursor  # noqa: PLC0415

    class DollarServerBindingCursor(CursorMixin, RawCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if params is not None:
                query = dollar_placeholders(query)
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            return super().executemany(dollar_placeholders(query), params_seq, **kwargs)

    return DollarServerBindingCursor


_PLACEHOLDER = re.compile(r"%(.|\Z)", re.DOTALL)


# Once per statement text: this module's statements are a fixed set (bounded all the same).
@functools.lru_cache(maxsize=1_000)
def dollar_placeholders(sql: str) -> str:
    """``sql`` with its %s placeholders numbered as PostgreSQL's $n and each %% a %, as psycopg
    reads them. Only %s and %% are this module's (no named placeholders): any other % is
    refused rather than sent as it is."""
    count = itertools.count(1)

    def number(match: re.Match[str]) -> str:
        if match.group(1) == "s":
            return f"${next(count)}"
        if match.group(1) == "%":
            return "%"
        raise ValueError(f"unsupported placeholder %{match.group(1)} in a prepared statement")

    return _PLACEHOLDER.sub(number, sql)


class PreparedQueryError(RuntimeError):
    """The query cannot be prepared: its SQL changes with an argument."""


def _server_form(
    sql: str, params: tuple[Any, ...], slots: dict[str, tuple[int, ...]], connection: Any
) -> tuple[str, tuple[str, ...]]:
    """The statement as it is prepared on the server: the parameters that never change (a
    status, the EXISTS's constant) written into its text as literals, the arguments left as
    parameters; and which argument each remaining parameter takes. PostgreSQL plans a
    prepared statement once for all executions only when that generic plan looks no
    costlier than one planned for the values; with the statuses as parameters it could not
    tell that few of an account's orders are queued, and planned every execution again."""
    argument_at = {position: name for name, positions in slots.items() for position in positions}
    parts: list[str] = []
    arguments: list[str] = []
    position = 0
    for token in re.split(r"(%%|%s)", sql):
        if token != "%s":
            parts.append(token)
            continue
        if position in argument_at:
            parts.append(token)
            arguments.append(argument_at[position])
        else:
            literal = connection.ops.compose_sql("%s", [params[position]])
            parts.append(literal.replace("%", "%%"))
        position += 1
    if position != len(params):
        raise PreparedQueryError("the statement's placeholders do not match its parameters")
    return "".join(parts), tuple(arguments)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    slots: dict[str, tuple[int, ...]]  # argument -> positions in params
    compiler: Any  # the SQLCompiler after as_sql(): select, klass_info, annotation_col_map
    # PostgreSQL: the statement as it is prepared on the server (``_server_form``), and the
    # argument each of its parameters takes.
    server_sql: str | None = None
    server_arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Reader:
    compiled: _Compiled
    compiler: Any
    converters: dict[int, Any]
    populators: list[Any]
    model: Any
    init_list: list[str]
    span: tuple[int, int]


class PreparedSelect(Generic[M]):
    """``build(**arguments)`` returns the queryset; ``fetch(**arguments)`` its rows.

    ``arguments`` maps each argument to the model field whose column it is compared with
    (``{"webhook_id": Order._meta.get_field("webhook")}``): the field turns a value into the
    database's parameter as the ORM would (a UUID is hex text on SQLite, a UUID on PostgreSQL).

    ``prefix(connection, **arguments)``, when given, returns SQL and its parameters written
    before the query's, e.g. a ``WITH`` whose data-modifying statement the query reads (the
    ORM cannot write one). Its parameters are found as the query's are; an argument may be used
    by the prefix only (``build`` then takes it and ignores it).
    """

    def __init__(
        self,
        build: Callable[..., QuerySet[M]],
        arguments: dict[str, Any],
        *,
        prefix: Callable[..., tuple[str, list[Any]]] | None = None,
    ):
        self._build = build
        self._fields = dict(arguments)
        self._prefix = prefix
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        # Per connection (each thread has its own): dropped with the connection.
        self._readers: weakref.WeakKeyDictionary[Any, _Reader] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _markers(self, round_: int) -> dict[str, Any]:
        markers: dict[str, Any] = {}
        for index, (name, field) in enumerate(self._fields.items()):
            target = getattr(field, "target_field", field)
            kind = target.get_internal_type()
            if kind == "UUIDField":
                markers[name] = uuid.UUID(int=(round_ << 64) + index + 1)
            elif kind == "DateTimeField":
                markers[name] = datetime.datetime(
                    2001 + round_, 1, 1, tzinfo=datetime.UTC
                ) + datetime.timedelta(seconds=index)
            elif kind in {"CharField", "TextField", "SlugField"}:
                markers[name] = f"~prepared-{round_}-{index}~"
            else:  # integers and the like
                markers[name] = 10**12 + round_ * 1000 + index
        return markers

    def _compile(self, alias: str) -> _Compiled:
        connection = connections[alias]
        key = (alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is not None:
                return compiled
            base = self._markers(0)
            compiler, sql, params = self._statement(connection, alias, base)
            slots: dict[str, tuple[int, ...]] = {}
            for name in self._fields:
                _, other_sql, other_params = self._statement(
                    connection, alias, {**base, name: self._markers(1)[name]}
                )
                if other_sql != sql or len(other_params) != len(params):
                    raise PreparedQueryError(f"the SQL changes with {name!r}")
                slots[name] = tuple(
                    i for i, (a, b) in enumerate(zip(params, other_params, strict=True)) if a != b
                )
                if not slots[name]:
                    raise PreparedQueryError(f"{name!r} is not a parameter of the query")
            taken = [i for positions in slots.values() for i in positions]
            if len(taken) != len(set(taken)):
                raise PreparedQueryError("two arguments share a parameter")
            server_sql, server_arguments = (
                _server_form(sql, params, slots, connection)
                if connection.vendor == "postgresql"
                else (None, ())
            )
            compiled = _Compiled(sql, params, slots, compiler, server_sql, server_arguments)
            self._compiled[key] = compiled
            return compiled

    def _statement(
        self, connection: Any, alias: str, arguments: dict[str, Any]
    ) -> tuple[Any, str, tuple[Any, ...]]:
        """The compiler of ``build(**arguments)``, and the SQL and parameters to run (the
        prefix's, if any, first)."""
        compiler = self._build(**arguments).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if self._prefix is None:
            return compiler, sql, tuple(params)
        prepped = {
            name: self._fields[name].get_db_prep_value(value, connection, prepared=False)
            for name, value in arguments.items()
        }
        head, head_params = self._prefix(connection, **prepped)
        return compiler, f"{head} {sql}", (*head_params, *params)

    def _reader(self, compiled: _Compiled, connection: Any, using: str) -> _Reader:
        """How rows become instances on ``connection``, worked out once per connection (the
        converters are its backend's bound methods; working them out for ~100 columns took
        longer than running the query)."""
        reader = self._readers.get(connection)
        if reader is not None and reader.compiled is compiled:
            return reader
        # A shallow copy bound to this connection.
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connection
        select, klass_info = compiler.select, compiler.klass_info
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        reader = _Reader(
            compiled=compiled,
            compiler=compiler,
            converters=compiler.get_converters([s[0] for s in select[0 : compiler.col_count]]),
            # django-stubs describes a later Django (a fetch_mode argument); 5.2 takes three.
            populators=get_related_populators(klass_info, select, using),  # type: ignore[call-arg]
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            span=(start, end),
        )
        self._readers[connection] = reader
        return reader

    def fetch(self, using: str = "default", **arguments: Any) -> list[M]:
        """The rows of ``build(**arguments)``, as ``list(queryset)`` would give them."""
        if arguments.keys() != self._fields.keys():
            raise TypeError(f"expected the arguments {sorted(self._fields)}, got {sorted(arguments)}")
        compiled = self._compile(using)
        connection = connections[using]
        values = {
            name: self._fields[name].get_db_prep_value(value, connection, prepared=False)
            for name, value in arguments.items()
        }
        server = binds_on_server(connection)
        if server and compiled.server_sql is not None:
            sql, params = compiled.server_sql, [values[name] for name in compiled.server_arguments]
        else:
            sql, params = compiled.sql, list(compiled.params)
            for name, value in values.items():
                for position in compiled.slots[name]:
                    params[position] = value
        with statement_cursor(connection, prepare=server) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if not rows:
            return []
        reader = self._reader(compiled, connection, using)
        compiler, converters, populators = reader.compiler, reader.converters, reader.populators
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        model_cls, init_list, annotation_col_map = reader.model, reader.init_list, compiler.annotation_col_map
        start, end = reader.span
        objects: list[M] = []
        for row in rows:
            obj = model_cls.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for attr_name, position in (annotation_col_map or {}).items():
                setattr(obj, attr_name, row[position])
            objects.append(obj)
        return objects


@dataclass(frozen=True)
class _UpdateShape:
    sql: str
    set_fields: tuple[Any, ...]
    where_fields: tuple[tuple[Any, int], ...]  # field, number of values (1 for `=`)


class PreparedUpdate(Generic[M]):
    """``UPDATE <table> SET <columns> WHERE <conditions>`` for one model, its SQL written once
    per database and shape instead of compiled by the ORM on every call.

    On the worker's path to the venue, claiming an order and recording its answer are one
    UPDATE each; the ORM's compile of ``filter(...).update(...)`` cost about 1 ms of CPU each,
    several times the statement itself on SQLite (docs/benchmarks-speed.md). The SQL is plain
    (column = parameter, conditions joined by AND), so nothing the ORM would add is lost: no
    signals are sent and ``auto_now`` is not applied, exactly as with ``QuerySet.update``.

    ``where`` names the conditions, each a concrete field compared with ``=`` or, with the
    suffix ``__in``, with a tuple of values (the tuple's length is part of the shape). Values are
    turned into parameters by their fields as the ORM turns them (``get_db_prep_save`` for the
    columns set, ``get_db_prep_value`` for the conditions). Expressions (``F()``) and a ``None``
    condition (which would need ``IS NULL``) are refused: use the ORM for those.
    """

    def __init__(self, model: type[M], where: tuple[str, ...]):
        self._model = model
        self._where: list[tuple[str, Any, bool]] = []
        for lookup in where:
            name, _, suffix = lookup.partition("__")
            if suffix not in ("", "in"):
                raise PreparedQueryError(f"only `=` and `__in` conditions: {lookup!r}")
            self._where.append((lookup, self._field(name), suffix == "in"))
        self._shapes: dict[tuple[Any, ...], _UpdateShape] = {}

    def _field(self, name: str) -> Any:
        meta = self._model._meta
        field = meta.pk if name == "pk" else meta.get_field(name)
        if not getattr(field, "concrete", False) or field.many_to_many:
            raise PreparedQueryError(f"{name!r} is not a column of {meta.label}")
        return field

    def _shape(self, connection: Any, names: tuple[str, ...], arities: tuple[int, ...]) -> _UpdateShape:
        key = (connection.alias, connection.vendor, names, arities)
        shape = self._shapes.get(key)
        if shape is not None:
            return shape
        quote = connection.ops.quote_name
        set_fields = tuple(self._field(name) for name in names)
        conditions: list[str] = []
        where_fields: list[tuple[Any, int]] = []
        for (_, field, is_in), arity in zip(self._where, arities, strict=True):
            if is_in:
                if arity == 0:
                    raise PreparedQueryError(f"an empty `__in` for {field.name!r}")
                conditions.append(f"{quote(field.column)} IN ({', '.join(['%s'] * arity)})")
            else:
                conditions.append(f"{quote(field.column)} = %s")
            where_fields.append((field, arity))
        sql = "UPDATE {} SET {} WHERE {}".format(  # noqa: S608 - names from the model, values as parameters
            quote(self._model._meta.db_table),
            ", ".join(f"{quote(field.column)} = %s" for field in set_fields),
            " AND ".join(conditions),
        )
        shape = _UpdateShape(sql, set_fields, tuple(where_fields))
        self._shapes[key] = shape
        return shape

    def run(self, values: dict[str, Any], using: str = "default", **where: Any) -> int:
        """Set ``values`` on the rows matching ``where``; the number of rows updated."""
        if not values:
            raise TypeError("nothing to set")
        expected = [lookup for lookup, _, _ in self._where]
        if sorted(where) != sorted(expected):
            raise TypeError(f"expected the conditions {sorted(expected)}, got {sorted(where)}")
        arities = []
        for lookup, field, is_in in self._where:
            value = where[lookup]
            if value is None or (is_in and any(v is None for v in value)):
                raise PreparedQueryError(f"a None condition for {field.name!r} needs IS NULL: use the ORM")
            arities.append(len(value) if is_in else 1)
        connection = connections[using]
        shape = self._shape(connection, tuple(values), tuple(arities))
        params: list[Any] = []
        for field, (name, value) in zip(shape.set_fields, values.items(), strict=True):
            if hasattr(value, "resolve_expression"):
                raise PreparedQueryError(f"an expression for {name!r}: use the ORM")
            params.append(field.get_db_prep_save(value, connection))
        for (lookup, _, is_in), (field, _) in zip(self._where, shape.where_fields, strict=True):
            for value in where[lookup] if is_in else (where[lookup],):
                params.append(field.get_db_prep_value(value, connection, prepared=False))
        with statement_cursor(connection) as cursor:
            cursor.execute(shape.sql, params)
            return int(cursor.rowcount)

    def run_each(self, rows: list[tuple[Any, dict[str, Any]]], using: str = "default") -> int:
        """Several rows, each by its key with its own values, in ONE statement: ``SET column =
        CASE key WHEN %s THEN %s … ELSE column END … WHERE key IN (…)``. For an update made
        ``where=("pk",)``; every row sets the same columns, and no key comes twice. Returns the
        number of rows updated. On PostgreSQL each value is cast to its column's type (a CASE
        of bare parameters would be typed as text)."""
        if [lookup for lookup, _, _ in self._where] != ["pk"]:
            raise TypeError("run_each updates rows by their key: make the update where=('pk',)")
        if not rows:
            return 0
        names = tuple(rows[0][1])
        if not names:
            raise TypeError("nothing to set")
        if any(tuple(values) != names for _, values in rows):
            raise TypeError("every row must set the same columns, in the same order")
        keys = [key for key, _ in rows]
        if len({str(key) for key in keys}) != len(keys):
            raise TypeError("a key comes twice")
        if any(key is None for key in keys):
            raise PreparedQueryError("a None key: use the ORM")
        connection = connections[using]
        cache_key = (connection.alias, connection.vendor, names, "each", len(rows))
        shape = self._shapes.get(cache_key)
        key_field = self._where[0][1]
        if shape is None:
            quote = connection.ops.quote_name
            key_column = quote(key_field.column)
            set_fields = tuple(self._field(name) for name in names)
            assignments = []
            for field in set_fields:
                value = "%s"
                if connection.vendor == "postgresql":
                    value = f"CAST(%s AS {field.cast_db_type(connection)})"
                whens = " ".join(f"WHEN %s THEN {value}" for _ in rows)
                column = quote(field.column)
                assignments.append(f"{column} = CASE {key_column} {whens} ELSE {column} END")
            sql = "UPDATE {} SET {} WHERE {} IN ({})".format(  # noqa: S608 - names from the model
                quote(self._model._meta.db_table),
                ", ".join(assignments),
                key_column,
                ", ".join(["%s"] * len(rows)),
            )
            shape = self._shapes[cache_key] = _UpdateShape(sql, set_fields, ((key_field, len(rows)),))
        params: list[Any] = []
        prepared_keys = [key_field.get_db_prep_value(key, connection, prepared=False) for key in keys]
        for field, name in zip(shape.set_fields, names, strict=True):
            for prepared_key, (_, values) in zip(prepared_keys, rows, strict=True):
                value = values[name]
                if hasattr(value, "resolve_expression"):
                    raise PreparedQueryError(f"an expression for {name!r}: use the ORM")
                params.extend((prepared_key, field.get_db_prep_save(value, connection)))
        params.extend(prepared_keys)
        with statement_cursor(connection) as cursor:
            cursor.execute(shape.sql, params)
            return int(cursor.rowcount)


_UNSET = object()
# Types whose equal values always make the same parameter. Not containers: {"x": 1} equals
# {"x": True} and {"x": 1.0}, which JSON writes differently; not Decimal (1.0 equals 1.00) and
# not float (0.0 equals -0.0). Those are shared only when they are the same object.
_SHARED_BY_EQUALITY = frozenset({str, int, bool, uuid.UUID, datetime.datetime, datetime.date})


# pre_save methods that, for a field without auto_now(_add), only read the attribute.
_READS_THE_ATTRIBUTE = frozenset({Field.pre_save, DateField.pre_save, DateTimeField.pre_save})


def _max_params(connection: Any) -> int:
    """Parameters one statement may carry on ``connection``."""
    if connection.vendor == "sqlite":
        raw = connection.connection
        if raw is not None and hasattr(raw, "getlimit"):
            return int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return 999
    return 65535  # PostgreSQL's protocol limit, whether or not the driver binds on the server


def _related_settled(
    obj: Model,
    relations: list[tuple[ForeignObject, str, str, str]],
    known: dict[int, tuple[Any, Any] | None],
) -> bool:
    """True when ``Model._prepare_related_fields_for_save`` would neither change ``obj`` nor
    raise: every related object it holds is saved and its key is the one ``obj`` stores. (The
    ORM's method costs ~9 µs an instance, a tenth of a 1,000-account fan-out's accept; this
    check a fraction of that. Anything else is left to the ORM's method.)

    ``known``: what was read of each related object already, by identity (the rows of one
    insert share their webhook and strategy; the caller's rows keep those objects alive): its
    key and the value it gives the row, or None when it is unsaved."""
    cache = obj._state.fields_cache
    values = obj.__dict__
    for field, cache_name, attname, target in relations:
        related = cache.get(cache_name)
        if related is None:
            continue  # none assigned (or None): the ORM's method skips it too
        if id(related) in known:
            read = known[id(related)]
        else:
            key = related.pk
            read = known[id(related)] = None if key is None or key == "" else (key, getattr(related, target))
        if read is None:
            return False
        value = values.get(attname)
        if value is None or read[1] != value or value in field.empty_values:
            return False
    return True


@dataclass(frozen=True)
class _InsertPlan:
    """What ``bulk_insert`` works out once per model and database: the columns, which of them
    are stamped (auto_now/auto_now_add) or only read from the attribute, the relations it
    checks, and the statement's text."""

    columns: tuple[tuple[Field[Any, Any], str, bool], ...]  # field, attname, read the attribute
    stamped: tuple[Field[Any, Any], ...]
    relations: list[tuple[ForeignObject, str, str, str]]
    checked: bool  # the fast related-object check knows every relation
    head: str  # INSERT INTO table (columns) VALUES
    row: str  # (%s, ...)
    # PostgreSQL: each column's type (the casts of the unnest statement); None elsewhere.
    types: tuple[str, ...] | None


_insert_plans: dict[tuple[type[Model], str], _InsertPlan] = {}


def _insert_plan(model: type[Model], connection: Any) -> _InsertPlan:
    plan = _insert_plans.get((model, connection.alias))
    if plan is not None:
        return plan
    meta = model._meta
    if meta.pk is None or getattr(meta.pk, "db_returning", False):
        raise PreparedQueryError(f"{meta.label}'s key is set by the database: use bulk_create")
    fields = [f for f in meta.concrete_fields if not getattr(f, "generated", False)]
    stamped = tuple(f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
    quote = connection.ops.quote_name
    plan = _InsertPlan(
        columns=tuple(
            (f, f.attname, any(f is s for s in stamped) or type(f).pre_save in _READS_THE_ATTRIBUTE)
            for f in fields
        ),
        stamped=stamped,
        relations=[
            (f, f.cache_name, f.attname, f.target_field.attname)
            for f in fields
            if isinstance(f, ForeignObject)
        ],
        # (The fast check knows foreign keys; any other relation is left to the ORM.)
        checked=not meta.private_fields
        and all(isinstance(f, ForeignObject) for f in fields if f.is_relation),
        head="INSERT INTO {} ({}) VALUES ".format(  # noqa: S608 - names from the model, values as parameters
            quote(meta.db_table), ", ".join(quote(str(f.column)) for f in fields)
        ),
        row="(" + ", ".join(["%s"] * len(fields)) + ")",
        types=(
            tuple(str(f.db_type(connection)) for f in fields) if connection.vendor == "postgresql" else None
        ),
    )
    _insert_plans[(model, connection.alias)] = plan
    return plan


@dataclass(frozen=True)
class _KeyedInsert:
    """``insert_returning_key``'s statement for one model and database."""

    fields: tuple[Field[Any, Any], ...]
    sql: str
    returning: bool  # the key comes back as a row (RETURNING), else as the cursor's lastrowid


_keyed_inserts: dict[tuple[type[Model], str], _KeyedInsert] = {}


def insert_returning_key(obj: Model, using: str = "default") -> None:
    """INSERT one new instance of a model whose key the database sets (an ``AutoField``), as
    ``obj.save()`` does for a new instance, and give it the key the database chose.

    The statement is written once per model and database (prepared on PostgreSQL, like this
    module's others): ``Model.save`` compiles its INSERT on every call, most of a paper fill's
    write. Each field's value is prepared as the ORM prepares it (``pre_save(add=True)``, which
    stamps ``auto_now_add``, then ``get_db_prep_save``); related objects are checked as ``save``
    checks them. No signals (nothing listens to the models this is used for)."""
    model = type(obj)
    meta = model._meta
    connection = connections[using]
    plan = _keyed_inserts.get((model, connection.alias))
    if plan is None:
        if meta.pk is None or not getattr(meta.pk, "db_returning", False):
            raise PreparedQueryError(f"{meta.label}'s key is not set by the database: use bulk_insert")
        fields = tuple(
            f for f in meta.concrete_fields if f is not meta.pk and not getattr(f, "generated", False)
        )
        quote = connection.ops.quote_name
        returning = bool(connection.features.can_return_columns_from_insert)
        sql = "INSERT INTO {} ({}) VALUES ({}){}".format(  # noqa: S608 - names from the model, values as parameters
            quote(meta.db_table),
            ", ".join(quote(str(f.column)) for f in fields),
            ", ".join(["%s"] * len(fields)),
            f" RETURNING {quote(str(meta.pk.column))}" if returning else "",
        )
        plan = _keyed_inserts[(model, connection.alias)] = _KeyedInsert(fields, sql, returning)
    if not obj._state.adding or obj.pk is not None:
        raise ValueError("insert_returning_key takes a new instance without a key")
    obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in plan.fields]
    with statement_cursor(connection) as cursor:
        cursor.execute(plan.sql, params)
        key = cursor.fetchone()[0] if plan.returning else cursor.lastrowid
    obj.pk = key
    obj._state.adding = False
    obj._state.db = using


def bulk_insert(objs: list[M], using: str = "default") -> None:
    """INSERT new instances of one model, as ``QuerySet.bulk_create(objs)`` does for a model whose
    key is set in Python (a UUID default), in as few statements as the database allows.

    A fan-out's rows differ in a few columns (key, account, client order id) and share the rest
    (webhook, strategy, symbol, side, quantity rule, status, timestamps). The ORM prepares every
    column of every row and builds a placeholder per value: for a webhook to 1,000 accounts that
    was most of the time to accept it (docs/benchmarks-speed.md). On PostgreSQL several rows are
    one statement with one array parameter a varying column and one value a shared one
    (``INSERT … SELECT u.c0, %s, … FROM unnest(%s::uuid[], …)``, ``_unnest_statement``): its
    text does not change with the number of rows, so it is prepared once, and the driver has no
    placeholder a value to find in it (psycopg parsed a 1,000-row VALUES list's 35,000
    placeholders on every execution: about half of that webhook's accept on PostgreSQL).
    On SQLite: VALUES lists, as many rows a statement as it takes. Each column's parameter is
    prepared by its field as the ORM prepares it (``pre_save`` then ``get_db_prep_save``), once
    per run of equal values: a value equal to the previous row's (same type, see
    ``_SHARED_BY_EQUALITY``) reuses its parameter. ``auto_now``/``auto_now_add`` take one
    timestamp for the whole insert (the rows are written in the same instant), set on the
    instances as the ORM sets them.

    Afterwards the instances are saved instances (``_state.adding`` False), as after
    ``bulk_create``. No signals, as with ``bulk_create``.
    """
    bulk_insert_together([objs], using)


def bulk_insert_together(groups: list[list[Any]], using: str = "default") -> None:
    """``bulk_insert`` of each group (instances of one model each), all or none, in the order
    given: a row may refer to a row of an earlier group (a webhook's orders to its event).

    On PostgreSQL the groups are written by **one** statement, each earlier group's INSERT in a
    ``WITH`` clause (a data-modifying CTE): a single statement is atomic by itself, so outside a
    transaction it is one round trip to the server where a transaction took four (BEGIN, an
    INSERT per group, COMMIT). Foreign keys hold, as PostgreSQL checks them at the end of the
    statement (Django makes them deferrable, checked at the commit). Elsewhere (SQLite has no
    data-modifying CTE): one transaction holding ``bulk_insert``'s statements. Inside a caller's
    transaction either way is part of it.
    """
    groups = [group for group in groups if group]
    if not groups:
        return
    connection = connections[using]
    per_group = [_insert_statements(group, connection) for group in groups]
    statements = [statement for group in per_group for statement in group]
    if (
        connection.vendor == "postgresql"
        and len(groups) > 1
        and len(statements) == len(groups)  # one statement a group
        and sum(len(params) for _, params in statements) <= _max_params(connection)
    ):
        ctes = ", ".join(f"_qt_insert_{i} AS ({sql})" for i, (sql, _) in enumerate(statements[:-1]))
        statements = [(f"WITH {ctes} {statements[-1][0]}", [p for _, params in statements for p in params])]
    prepare = all(len(params) <= PREPARE_MAX_PARAMS for _, params in statements)
    with (
        transaction.atomic(using=using, savepoint=False) if len(statements) > 1 else contextlib.nullcontext(),
        statement_cursor(connection, prepare=prepare) as cursor,
    ):
        for sql, params in statements:
            cursor.execute(sql, params)
    for group in groups:
        _saved(group, using)


def _saved(objs: list[Any], using: str) -> None:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def _insert_statements(objs: list[M], connection: Any) -> list[tuple[str, list[Any]]]:
    """The INSERT statements ``bulk_insert`` runs for ``objs``, with their parameters (keys
    given, related keys settled, auto_now stamped on the instances)."""
    model = type(objs[0])
    meta = model._meta
    if any(type(obj) is not model for obj in objs):
        raise TypeError("bulk_insert takes instances of one model")
    plan = _insert_plan(model, connection)
    settled: dict[int, tuple[Any, Any] | None] = {}  # _related_settled's, per related object
    for obj in objs:
        if obj.pk is None:
            obj.pk = meta.pk.get_pk_value_on_save(obj)
        # As bulk_create does: a related object saved after assignment gives its key now (and
        # an unsaved one is refused). Left to the ORM unless nothing can come of it.
        if not plan.checked or not _related_settled(obj, plan.relations, settled):
            obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
    # One instant for every auto_now(_add) column: pre_save on the first row, copied to the rest.
    for field in plan.stamped:
        value = field.pre_save(objs[0], add=True)
        for obj in objs[1:]:
            setattr(obj, field.attname, value)
    if len(objs) == 1:  # a webhook's event, a one-account signal's order
        obj = objs[0]
        row = [
            field.get_db_prep_save(
                getattr(obj, attname) if reads else field.pre_save(obj, add=True), connection
            )
            for field, attname, reads in plan.columns
        ]
        return [(plan.head + plan.row, row)]
    columns = _column_params(plan, objs, connection)
    if plan.types is not None:
        return [_unnest_statement(plan, columns, connection)]
    return list(_batch_statements(plan, columns, len(objs), connection))


def _column_params(plan: _InsertPlan, objs: list[M], connection: Any) -> list[list[Any]]:
    """Each column's parameters for several rows, each prepared once per run of equal values."""
    params: list[list[Any]] = []
    # New instances hold every concrete field's value in their __dict__: reading the dicts
    # skips the attribute lookup's descriptor step, 40,000 times for 1,000 rows.
    values = [obj.__dict__ for obj in objs]
    for field, attname, reads in plan.columns:
        if reads:
            try:
                raws = list(map(operator.itemgetter(attname), values))
            except KeyError:  # a value not in the instance's dict (a subclass's property)
                raws = list(map(operator.attrgetter(attname), objs))
        else:
            raws = [field.pre_save(obj, add=True) for obj in objs]
        if all(map(operator.is_, raws, itertools.repeat(raws[0]))):
            # One object in every row (the webhook, the strategy, a fan-out's shared values).
            params.append([field.get_db_prep_save(raws[0], connection)] * len(raws))
            continue
        last_raw: Any = _UNSET
        last: Any = None
        column: list[Any] = []
        for raw in raws:
            kind = type(raw)
            if raw is not last_raw and not (
                kind is type(last_raw) and kind in _SHARED_BY_EQUALITY and raw == last_raw
            ):
                last = field.get_db_prep_save(raw, connection)
                last_raw = raw
            column.append(last)
        params.append(column)
    return params


# (model, database, the columns whose values vary) -> the unnest statement's text.
_unnest_statements: dict[tuple[type[Model], str, tuple[int, ...]], str] = {}


def _unnest_statement(plan: _InsertPlan, columns: list[list[Any]], connection: Any) -> tuple[str, list[Any]]:
    """PostgreSQL's statement for several rows: ``INSERT INTO t (a, b, c) SELECT u.a, %s, u.c
    FROM unnest(%s::type[], %s::type[]) AS u(a, c)``. A column whose rows all hold one value
    (the webhook, the strategy, the side, the status: most of a fan-out's) is one parameter;
    each other column is one array. The text depends only on which columns vary, not on the
    number of rows, so it is prepared once per shape; the driver adapts one value per shared
    column instead of one per row."""
    assert plan.types is not None
    varying = tuple(i for i, column in enumerate(columns) if any(p is not column[0] for p in column))
    if not varying:  # (one row, or identical rows: the key column always varies in practice)
        varying = (0,)
    key = (plan.columns[0][0].model, connection.alias, varying)
    sql = _unnest_statements.get(key)
    if sql is None:
        head = plan.head.removesuffix(" VALUES ")
        picked = ", ".join(
            f"u.c{i}" if i in varying else f"%s::{plan.types[i]}" for i in range(len(plan.columns))
        )
        arrays = ", ".join(f"%s::{plan.types[i]}[]" for i in varying)
        names = ", ".join(f"c{i}" for i in varying)
        sql = _unnest_statements[key] = f"{head} SELECT {picked} FROM unnest({arrays}) AS u({names})"  # noqa: S608 - names and types from the model
    shared = [column[0] for i, column in enumerate(columns) if i not in varying]
    return sql, [*shared, *(columns[i] for i in varying)]


def _batch_statements(
    plan: _InsertPlan, params: list[list[Any]], rows: int, connection: Any
) -> Iterator[tuple[str, list[Any]]]:
    """``bulk_insert``'s statements for several rows where they are written as VALUES lists
    (SQLite): as many rows per statement as the database takes."""
    per_statement = max(1, _max_params(connection) // len(plan.columns))
    for start in range(0, rows, per_statement):
        stop = min(start + per_statement, rows)
        flat = itertools.chain.from_iterable(zip(*(column[start:stop] for column in params), strict=True))
        yield plan.head + ", ".join([plan.row] * (stop - start)), list(flat)
