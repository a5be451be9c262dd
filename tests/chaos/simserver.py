"""The Binance simulator as its own process, plus one read-only route for the chaos tests:
``GET /__orders`` lists every order the venue received (client id, status), so a test can count
how many times each signal reached the venue. Run: ``python tests/chaos/simserver.py PORT``."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from venuesim.binance import BinanceSim


class CountingBinanceSim(BinanceSim):
    #: Seconds every order request waits before it is answered (``CHAOS_VENUE_DELAY``): with a
    #: slow venue, tasks are in flight (delivered, not yet acknowledged) when a fault hits.
    delay = float(os.environ.get("CHAOS_VENUE_DELAY") or 0)

    def order_create(self, request: Any, market: str, algo: bool = False) -> Any:
        if self.delay:
            time.sleep(self.delay)
        return super().order_create(request, market, algo=algo)

    def routes(self) -> dict[tuple[str, str], Any]:
        routes = super().routes()
        routes["GET", "/__orders"] = lambda _req: self.counts()
        return routes

    def counts(self) -> dict[str, Any]:
        """Per client order id: orders the venue holds and order requests (POSTs) it received."""
        posts: dict[str, int] = {}
        for request in self.seen("/api/v3/order", "POST"):
            params = dict(parse_qsl(request.raw_query)) | dict(parse_qsl(request.body.decode()))
            client_id = params.get("newClientOrderId", "")
            posts[client_id] = posts.get(client_id, 0) + 1
        with self.lock:
            orders = [{"client_id": o["client_id"], "status": o["status"]} for o in self.orders]
        return {"orders": orders, "posts": posts}


if __name__ == "__main__":
    sim = CountingBinanceSim()
    print(sim.start("127.0.0.1", int(sys.argv[1])), flush=True)
    threading.Event().wait()
