"""Crypto venues through ccxt: the generic ``CcxtAdapter`` (``base``) and one small subclass
per venue with quirks (``binance``, ``bybit``, ``okx``, ``bitget``, ``upbit``).

A new venue is one module here with its subclass and one line in the registry
(``orders/exchanges/__init__.py``); a ccxt id the registry does not name uses ``CcxtAdapter``.
"""
