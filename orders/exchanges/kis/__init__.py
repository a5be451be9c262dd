"""Korea Investment & Securities (한국투자증권) Open API: the client, the adapter (the registry's
entry point) and one module per market over base.py. Broker-neutral parts: ../brokerkit/."""

from __future__ import annotations

from orders.exchanges.kis.adapter import KisAdapter
from orders.exchanges.kis.client import KisClient

__all__ = ["KisAdapter", "KisClient"]
