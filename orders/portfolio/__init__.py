"""The portfolio of each account: balances and positions read from the venue, marked to market
from the price layer, realised PnL from the stored fills (FIFO), daily equity snapshots.

- ``pnl``: pure FIFO over fills (no database, no venue);
- ``records``: the dataclasses the service returns and the pages/API/``/ws`` show;
- ``services``: reading through the adapters, marking, the cache, refresh and snapshots.
"""
