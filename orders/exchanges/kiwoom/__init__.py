"""Kiwoom Securities (키움증권) REST API: domestic stocks (KRX, NXT, SOR)."""

from __future__ import annotations

from orders.exchanges.kiwoom.adapter import KiwoomAdapter

__all__ = ["KiwoomAdapter"]
