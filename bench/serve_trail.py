"""The README's product as a user runs it, read from its own latency trail.

Not a test: a measurement (issue #12, embedded target received -> sent <= 5 ms). Unlike
bench/fanout.py, whose intake runs in-process through Django's test client, this starts
``manage.py serve`` (daphne, or ``--server uvicorn``) on embedded defaults in a throwaway data
folder, runs ``seed_demo``, posts ``--signals`` webhooks over HTTP to the demo's one-account paper
strategy (``demo_spot``), ``--gap`` seconds apart, and then asks the server's own
``GET /api/latency`` (the figures the ``/latency/`` page shows) for p50/p99 per stage. The
client's time to the 202 is printed beside it (after ``--warm-up`` webhooks).

    .venv/bin/python bench/serve_trail.py --signals 80
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    from bench.webhook_accept import free_port

    data = Path(tempfile.mkdtemp(prefix="qt-bench-serve-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["QT_DATA_DIR"] = str(data)
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    seeded = subprocess.run(
        [python, "manage.py", "seed_demo", "--json"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    seed = json.loads(seeded.stdout)
    token = next(s["token"] for s in seed["strategies"] if s["group_name"] == "demo_spot")
    port = free_port()
    command = [python, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.server:
        command += ["--server", args.server]
    with open(data / "serve.log", "w") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        for _ in range(120):
            try:
                if session.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.25)
        answers = []
        for index in range(args.signals + args.warm_up):
            body = {
                "group_name": "demo_spot",
                "token": token,
                "symbol": "BTC/USDT",
                "currency": "USDT",
                "order_type": "MARKET",
                "side": "buy" if index % 2 == 0 else "sell",
                "qty_per": 1,
            }
            started = time.perf_counter()
            response = session.post(f"{base}/api/webhook", json=body, timeout=10)
            if index >= args.warm_up:
                answers.append((time.perf_counter() - started) * 1000)
            if response.status_code != 202:
                raise SystemExit(f"webhook answered {response.status_code}: {response.text}")
            time.sleep(args.gap)
        time.sleep(2)  # the last orders settle
        latency = session.get(
            f"{base}/api/latency?hours=1", headers={"Authorization": f"Token {seed['api_token']}"}, timeout=10
        ).json()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    stages = {s["stage"]: s for venue in latency["venues"] for s in venue["stages"]}
    return {"answer_p50_ms": statistics.median(answers), "stages": stages, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=80)
    parser.add_argument(
        "--warm-up", type=int, default=10, help="webhooks sent first, not timed at the client"
    )
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between webhooks")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default=None, help="serve's --server")
    args = parser.parse_args()
    result = run(args)
    stages = result["stages"]
    print(
        f"{os.cpu_count()} cores, load {result['load']:.1f}; {args.signals + args.warm_up} webhooks, one paper "
        f"account; client 202 p50 {result['answer_p50_ms']:.2f} ms"
    )
    for name in ("committed", "dispatched", "claimed", "sent", "answered"):
        if name in stages:
            print(
                f"  received -> {name:<10} p50 {stages[name]['p50_ms']:7.2f} ms  p99 {stages[name]['p99_ms']:7.2f} ms"
            )


if __name__ == "__main__":
    sys.exit(main())
