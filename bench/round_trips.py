"""What a round trip to PostgreSQL costs, and whether psycopg's pipeline mode saves it, on the
shape of a paper placement's transaction.

Not a test: a measurement (issue #12, round 19). A paper placement is six round trips (BEGIN, the
account's row lock, the book's read, the balances' UPDATE, the order's INSERT, COMMIT).
psycopg's pipeline mode could send them in three (BEGIN + lock + read together, the two writes
together, COMMIT) with the statements and their order unchanged — the read still runs after the
lock, in its own snapshot. This measures both ways in alternating rounds on a throwaway
PostgreSQL server: per transaction, this process's CPU (psycopg and the kernel's socket work),
the server backend's CPU (read from /proc) and the wall time.

    .venv/bin/python bench/round_trips.py --transactions 3000 --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = """
CREATE TABLE account (id int PRIMARY KEY, settings jsonb NOT NULL DEFAULT '{}');
CREATE TABLE balance (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES account,
                      asset text NOT NULL, free numeric NOT NULL, locked numeric NOT NULL);
CREATE TABLE paper_order (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES account,
                          client_order_id text NOT NULL UNIQUE, amount numeric NOT NULL);
INSERT INTO account (id) VALUES (1);
INSERT INTO balance (account_id, asset, free, locked) VALUES (1, 'USDT', 1000000, 0), (1, 'BTC', 0, 0);
"""
LOCK = "SELECT id, settings FROM account WHERE id = %s FOR UPDATE"
READ = (
    "SELECT b.id, b.asset, b.free, b.locked, (SELECT o.id FROM paper_order o"
    " WHERE o.client_order_id = %s) FROM balance b WHERE b.account_id = %s"
)
UPDATE = "UPDATE balance SET free = v.free FROM (VALUES (%s::int, %s::numeric), (%s::int, %s::numeric)) AS v(id, free) WHERE balance.id = v.id"
INSERT = "INSERT INTO paper_order (account_id, client_order_id, amount) VALUES (%s, %s, %s) RETURNING id"


def placement(conn: Any, n: int, *, pipelined: bool) -> None:
    """One placement's transaction: as the product runs it, or pipelined."""
    client_id = f"c{n}"
    amount = Decimal("0.001")
    if not pipelined:
        with conn.transaction():
            conn.execute(LOCK, (1,)).fetchall()
            rows = conn.execute(READ, (client_id, 1)).fetchall()
            (usdt, *_), (btc, *_) = sorted(rows, key=lambda r: r[1], reverse=True)
            conn.execute(UPDATE, (usdt, Decimal(1000000) - n, btc, Decimal(n) * amount))
            conn.execute(INSERT, (1, client_id, amount)).fetchone()
        return
    with conn.pipeline(), conn.transaction():
        lock = conn.execute(LOCK, (1,))
        read = conn.execute(READ, (client_id, 1))
        lock.fetchall()
        rows = read.fetchall()
        (usdt, *_), (btc, *_) = sorted(rows, key=lambda r: r[1], reverse=True)
        conn.execute(UPDATE, (usdt, Decimal(1000000) - n, btc, Decimal(n) * amount))
        conn.execute(INSERT, (1, client_id, amount)).fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=3000, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=6, help="per variant, alternating (one more warms up)")
    args = parser.parse_args()

    import psycopg

    from bench.webhook_accept import group_cpu_seconds, throwaway_backends

    tmp = Path(tempfile.mkdtemp(prefix="qt-bench-roundtrips-"))
    with ExitStack() as stack:
        database_url, _ = stack.enter_context(throwaway_backends(tmp / "servers"))
        url = database_url.rsplit("/", 1)[0].replace("postgres://", "postgresql://") + "/postgres"
        # As the product's connections: autocommit outside a transaction (Django's default), each
        # statement prepared on the server on its first run (quanttrade/prepared.py).
        conn = stack.enter_context(psycopg.connect(url, autocommit=True, prepare_threshold=0))
        with conn.transaction():
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement, prepare=False)
        # A PostgreSQL backend leads a process group of its own: its CPU is that group's.
        pid = conn.info.backend_pid
        serial = iter(range(10**9))

        def one_round(pipelined: bool) -> tuple[float, float, float]:
            cpu, server, wall = time.process_time(), group_cpu_seconds(pid), time.perf_counter()
            for _ in range(args.transactions):
                placement(conn, next(serial), pipelined=pipelined)
            per = 1000 / args.transactions
            return (
                (time.process_time() - cpu) * per,
                (group_cpu_seconds(pid) - server) * per,
                (time.perf_counter() - wall) * per,
            )

        variants: dict[str, Callable[[], tuple[float, float, float]]] = {
            "as shipped (6 round trips)": lambda: one_round(False),
            "pipelined (3 round trips)": lambda: one_round(True),
        }
        for run in variants.values():
            run()  # warm-up: statements prepared, caches filled
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                results[name].append(run())

    print(
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.transactions} transactions "
        f"per round, {args.rounds} rounds per row (median), one connection"
    )
    print("| variant | client CPU ms | server CPU ms | total CPU ms | wall ms |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        client = statistics.median(r[0] for r in rows)
        server = statistics.median(r[1] for r in rows)
        wall = statistics.median(r[2] for r in rows)
        print(f"| {name} | {client:.3f} | {server:.3f} | {client + server:.3f} | {wall:.3f} |")


if __name__ == "__main__":
    main()
