"""CI's embedded-mode smoke test, run by .ci/run: wait for /healthz, post one demo_spot webhook,
poll its result until every order is final; it must be filled.

    python .ci/smoke.py SEED_JSON PORT SERVER_PID

SEED_JSON is `manage.py seed_demo --json`'s output; SERVER_PID the `manage.py serve` process
(the test stops early if it exits).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the clone: tests.health
from tests.health import wait_healthy

seed_path, port, server_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
FINAL = {"filled", "cancelled", "rejected", "failed"}


def server_alive() -> bool:
    try:
        os.kill(server_pid, 0)
    except OSError:
        return False
    return True


def call(method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})  # noqa: S310 - http://127.0.0.1 only
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the request above
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")[:500]}


with open(seed_path, encoding="utf-8") as fh:
    seed = json.load(fh)
strategy = next(s for s in seed["strategies"] if s["group_name"] == "demo_spot")
api_token = seed["api_token"]

try:
    wait_healthy(base, timeout=60, alive=server_alive)
except (RuntimeError, TimeoutError) as exc:
    sys.exit(str(exc))
print("healthz: ok")

payload = {
    "group_name": "demo_spot",
    "token": strategy["token"],
    "symbol": "BTC/USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}
status, accepted = call("POST", "/api/webhook", payload)
print(f"POST /api/webhook -> {status}")
print(json.dumps(accepted, ensure_ascii=False, indent=2))
if status != 202 or not accepted.get("orders"):
    sys.exit("the webhook was not accepted with orders")

webhook_id = accepted["webhook_id"]
auth = {"Authorization": f"Token {api_token}"}
deadline = time.monotonic() + 60
result: dict = {}
while time.monotonic() < deadline:
    status, result = call("GET", f"/api/webhooks/{webhook_id}", headers=auth)
    if status != 200:
        sys.exit(f"GET /api/webhooks/{webhook_id} -> {status}: {result}")
    if all(o.get("status") in FINAL for o in result.get("orders", [])):
        break
    time.sleep(0.5)
print(f"GET /api/webhooks/{webhook_id} -> 200")
print(json.dumps(result, ensure_ascii=False, indent=2))
statuses = [o.get("status") for o in result.get("orders", [])]
if not statuses or any(s not in FINAL for s in statuses):
    sys.exit(f"orders did not reach a final status within 60 s: {statuses}")
if any(s != "filled" for s in statuses):
    sys.exit(f"expected the order to be filled, got {statuses}")
print(f"smoke test: {len(statuses)} order(s) filled")
