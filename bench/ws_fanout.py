"""WebSocket fan-out benchmark: N clients x M instruments x R ticks/s, latency and drops.

For each channel layer — InMemoryChannelLayer (embedded, publisher thread inside the server),
channels_redis RedisChannelLayer and RedisPubSubChannelLayer (publisher in a separate process,
as ``manage.py pricefeed`` runs) — it starts the real application under daphne (or, with
``--servers``, uvicorn or gunicorn with two uvicorn workers), connects N
``websockets`` clients that each subscribe to K instruments over the /ws protocol, publishes
R ticks/s per instrument through ``prices.services.price_publish`` and measures, per delivered
``price_update``, receive time minus the tick's timestamp. A bare baseline runs in the same
session: a plain ``websockets`` broadcast server sending the same frames to the same clients.
Drops = ticks published to a client's topics that it never received (every tick carries a
sequence number in ``volume``).

    .venv/bin/python bench/ws_fanout.py                       # small, ~1-2 minutes
    .venv/bin/python bench/ws_fanout.py --clients 1000 --instruments 100 --rate 10   # SPEC §7

Not a test: numbers depend on the machine; clients and servers share its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "inmemory": "channels.layers.InMemoryChannelLayer",
    "redis": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def instruments(count: int) -> list[str]:
    return [f"{100000 + n:06d}" for n in range(count)]


# --- publisher (inside the server for the in-memory layer, else its own process) --------


def publish_loop(ids: list[str], rate: float, ticks: int, start_file: Path | None) -> None:
    """Publish ``ticks`` ticks per instrument at ``rate``/s through the price layer."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")
    django.setup()
    from prices.services import price_publish_async

    async def run() -> None:
        while start_file is not None and not start_file.exists():
            await asyncio.sleep(0.05)
        begin = time.monotonic()
        for seq in range(1, ticks + 1):
            target = begin + (seq - 1) / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for n, instrument in enumerate(ids):
                await price_publish_async(instrument, 50000 + n, volume=seq, change=0, feed="bench")

    asyncio.run(run())


_publishing = False


def __getattr__(name: str) -> Any:
    """``bench.ws_fanout:application`` for the server: the real app, plus the in-process publisher."""
    if name != "application":
        raise AttributeError(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")
    from quanttrade.asgi import application

    global _publishing
    if os.environ.get("BENCH_PUBLISH") and not _publishing:
        _publishing = True  # uvicorn looks the attribute up more than once
        spec = json.loads(os.environ["BENCH_PUBLISH"])
        threading.Thread(
            target=publish_loop,
            args=(spec["ids"], spec["rate"], spec["ticks"], Path(spec["start_file"])),
            daemon=True,
        ).start()
    return application


# --- bare baseline server ------------------------------------------------------------------


def baseline_server(port: int, ids: list[str], rate: float, ticks: int, start_file: Path) -> None:
    """A plain websockets server speaking just enough of the protocol, same frames."""
    from websockets.asyncio.server import broadcast, serve

    subscribers: dict[str, set[Any]] = {i: set() for i in ids}

    async def handler(ws: Any) -> None:
        await ws.send(json.dumps({"type": "connected", "client_id": "baseline"}))
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "subscribe":
                    topic = message["topic"]
                    subscribers[topic[6:]].add(ws)
                    await ws.send(json.dumps({"type": "subscribed", "topic": topic}))
        finally:
            for group in subscribers.values():
                group.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, ping_interval=None):
            while not start_file.exists():
                await asyncio.sleep(0.05)
            begin = time.monotonic()
            for seq in range(1, ticks + 1):
                delay = begin + (seq - 1) / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                for n, instrument in enumerate(ids):
                    stamp = datetime.now().astimezone().isoformat()
                    data = {"ticker": instrument, "price": 50000 + n, "volume": seq, "timestamp": stamp}
                    frame = json.dumps(
                        {"type": "price_update", "ticker": instrument, "data": data, "timestamp": stamp}
                    )
                    broadcast(subscribers[instrument], frame)
            await asyncio.sleep(3600)

    asyncio.run(main())


# --- clients ----------------------------------------------------------------------------


async def run_clients(
    port: int, n_clients: int, ids: list[str], per_client: int, start: Any, duration: float
) -> dict[str, Any]:
    import websockets

    latencies: list[float] = []
    received = [0] * n_clients
    connections: list[Any] = []
    limiter = asyncio.Semaphore(50)

    async def connect(index: int) -> Any:
        async with limiter:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/ws", max_queue=None, ping_interval=None, open_timeout=60
            )
            await ws.recv()  # connected
            topics = [ids[(index * per_client + j) % len(ids)] for j in range(per_client)]
            for instrument in topics:
                await ws.send(json.dumps({"type": "subscribe", "topic": f"price:{instrument}"}))
            pending = len(topics)
            while pending:
                message = json.loads(await ws.recv())
                pending -= message["type"] == "subscribed"
            return ws

    async def read(index: int, ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                kind = message["type"]
                if kind == "price_update" and message["data"]["volume"]:
                    received[index] += 1
                    latencies.append(now - datetime.fromisoformat(message["data"]["timestamp"]).timestamp())
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
        except Exception:
            pass

    t0 = time.monotonic()
    connections = await asyncio.gather(*(connect(i) for i in range(n_clients)))
    connect_seconds = time.monotonic() - t0
    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(connections)]
    await start()
    # Publishing time, then drain: wait until nothing has arrived for 2 s (at most 60 s), so a
    # slow layer shows up as latency and only ticks that never arrive count as dropped.
    await asyncio.sleep(duration)
    last, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 60
    while time.monotonic() < deadline:
        total = sum(received)
        if total != last:
            last, quiet_since = total, time.monotonic()
        elif time.monotonic() - quiet_since >= 2:
            break
        await asyncio.sleep(0.2)
    for ws in connections:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return {"latencies": latencies, "received": sum(received), "connect_seconds": connect_seconds}


def summarize(name: str, result: dict[str, Any], expected: int) -> dict[str, Any]:
    lat = sorted(result["latencies"])

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return {
        "layer": name,
        "expected": expected,
        "delivered": result["received"],
        "dropped": expected - result["received"],
        "p50_ms": round(pct(0.50), 1),
        "p99_ms": round(pct(0.99), 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        "connect_s": round(result["connect_seconds"], 1),
    }


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start") from None
            time.sleep(0.1)


def clear_redis_ticks(url: str, ids: list[str]) -> None:
    """Forget the previous run's ticks so a subscribe snapshot is not counted as a delivery."""
    import redis

    redis.Redis.from_url(url).delete(*[f"qt:price:{i}" for i in ids])


SERVERS = ("daphne", "uvicorn", "gunicorn")


def server_command(server: str, port: int) -> list[str]:
    """The web server running the application: daphne (the stack's, one process), uvicorn (one
    process, `websockets` for /ws) or gunicorn with two uvicorn workers (the Procfile's)."""
    app, bin_dir = "bench.ws_fanout:application", Path(sys.executable).parent
    if server == "daphne":
        return [str(bin_dir / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(port), app]
    if server == "uvicorn":  # with the product's options (uvicorn_server below)
        return [sys.executable, __file__, "--role", "uvicorn-server", "--port", str(port)]
    if server == "gunicorn":
        return [str(bin_dir / "gunicorn"), app, "-w", "2", "-k", "quanttrade.gunicorn_worker.Worker",
                "-b", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
    raise ValueError(server)


def uvicorn_server(port: int) -> None:
    """uvicorn as ``manage.py serve --server uvicorn`` and the gunicorn worker run it
    (quanttrade/uvicorn_options.py), serving this module's application."""
    import uvicorn

    from quanttrade.uvicorn_options import UVICORN_OPTIONS

    uvicorn.run(
        "bench.ws_fanout:application",
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        **UVICORN_OPTIONS,
    )


def run_layer(
    layer: str, args: argparse.Namespace, ids: list[str], data_dir: Path, server: str = "daphne"
) -> dict[str, Any]:
    from bench.webhook_accept import free_port  # main put the repository on sys.path

    ticks = int(args.rate * args.duration)
    start_file = data_dir / f"start-{layer}-{server}-{time.monotonic_ns()}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {"QT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PRICE_FEEDS": "", "LOG_LEVEL": "WARNING"}
    )
    publisher: subprocess.Popen[bytes] | None = None
    if layer == "baseline":
        cmd = [sys.executable, __file__, "--role", "baseline-server", "--port", str(port), "--instruments", str(args.instruments),
               "--rate", str(args.rate), "--duration", str(args.duration), "--start-file", str(start_file)]  # fmt: skip
    else:
        if layer != "inmemory":
            env.update(
                {
                    "REDIS_URL": args.redis_url,
                    "CHANNEL_LAYER_BACKEND": LAYERS[layer],
                    "QT_ALLOW_LOCAL_SECRETS": "1",
                }
            )
            clear_redis_ticks(args.redis_url, ids)
        else:
            env["BENCH_PUBLISH"] = json.dumps(
                {"ids": ids, "rate": args.rate, "ticks": ticks, "start_file": str(start_file)}
            )
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        cmd = server_command(server, port)
    process = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        wait_port(port, process)

        async def start() -> None:
            nonlocal publisher
            if layer in ("redis", "pubsub"):
                publisher = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--role",
                        "publisher",
                        "--instruments",
                        str(args.instruments),
                        "--rate",
                        str(args.rate),
                        "--duration",
                        str(args.duration),
                    ],
                    cwd=ROOT,
                    env=env,
                )
            start_file.touch()

        result = asyncio.run(run_clients(port, args.clients, ids, args.topics, start, args.duration))
    finally:
        process.terminate()
        process.wait(10)
        if publisher is not None:
            publisher.wait(30)
    name = layer if layer == "baseline" or server == "daphne" else f"{layer}/{server}"
    return summarize(name, result, args.clients * args.topics * ticks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5.0, help="ticks per second per instrument")
    parser.add_argument("--topics", type=int, default=1, help="instruments each client subscribes to")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing per layer")
    parser.add_argument("--layers", default="baseline,inmemory,redis,pubsub")
    parser.add_argument(
        "--servers",
        default="daphne",
        help="web servers for the product's layers, each run in turn: daphne, uvicorn, gunicorn (2 workers)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    ids = instruments(args.instruments)
    ticks = int(args.rate * args.duration)
    sys.path.insert(0, str(ROOT))
    if args.role == "publisher":
        return publish_loop(ids, args.rate, ticks, None)
    if args.role == "uvicorn-server":
        return uvicorn_server(args.port)
    if args.role == "baseline-server":
        return baseline_server(args.port, ids, args.rate, ticks, args.start_file)

    print(
        f"ws_fanout: {args.clients} clients x {args.topics} topic(s) each, {args.instruments} instruments x "
        f"{args.rate:g} ticks/s for {args.duration:g} s -> {args.clients * args.topics * args.rate:g} deliveries/s"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        servers = [server.strip() for server in args.servers.split(",")]
        for server in servers:
            if server not in SERVERS:
                raise SystemExit(f"unknown server {server!r} (use {', '.join(SERVERS)})")
        runs = []
        for layer in (layer.strip() for layer in args.layers.split(",")):
            if layer == "baseline":
                runs.append((layer, "daphne"))
                continue
            for server in servers:
                if layer == "inmemory" and server == "gunicorn":
                    continue  # its publisher is a thread of the one server process
                runs.append((layer, server))
        for layer, server in runs:
            row = run_layer(layer, args, ids, Path(tmp), server)
            rows.append(row)
            print(json.dumps(row) if args.json else
                  f"{row['layer']:<16} delivered {row['delivered']:>8}/{row['expected']:<8} dropped {row['dropped']:>6}  "
                  f"p50 {row['p50_ms']:>7} ms  p99 {row['p99_ms']:>7} ms  max {row['max_ms']} ms  (connect {row['connect_s']} s)",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
