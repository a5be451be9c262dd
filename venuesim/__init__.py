"""Local venue simulators: Binance, Bybit, Upbit, OKX, Bitget and KIS wire formats on 127.0.0.1.

They are a test and demo tool, never a production code path. Each runs on the standard
library's ``ThreadingHTTPServer``, keeps its state in memory, records every request it sees
and can inject faults (timeout after accepting, 5xx, rate limits, token expiry, rejections).
Run one by hand with ``python -m venuesim.binance --port 9001`` (likewise ``upbit``, ``kis``,
``bybit``, ``okx``, ``bitget``).
"""
