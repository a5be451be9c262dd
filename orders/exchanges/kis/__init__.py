"""Korea Investment & Securities (한국투자증권) Open API: the client and the adapter."""

from __future__ import annotations

from orders.exchanges.kis.adapter import KisAdapter
from orders.exchanges.kis.client import KisClient

__all__ = ["KisAdapter", "KisClient"]
