"""Source-address checks for the webhook: client IP behind trusted proxies, IP allowlist."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.http import HttpRequest

# TradingView's published webhook source addresses.
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """IPs and CIDRs (and the alias "tradingview") as networks. Raises ValueError on a bad entry."""
    networks: list[Network] = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == "tradingview":
            networks.extend(ipaddress.ip_network(ip) for ip in TRADINGVIEW_IPS)
        else:
            networks.append(ipaddress.ip_network(entry, strict=False))
    return tuple(networks)


def _in(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_ip(request: HttpRequest, trusted_proxies: tuple[str, ...]) -> str | None:
    """The sender's address. X-Forwarded-For is believed only when the direct peer is a
    trusted proxy; then the right-most address that is not itself a trusted proxy wins."""
    peer = _address(request.META.get("REMOTE_ADDR"))
    proxies = parse_networks(trusted_proxies)
    if peer is None or not proxies or not _in(peer, proxies):
        return peer
    forwarded = [
        part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()
    ]
    for candidate in reversed(forwarded):
        if not _in(candidate, proxies):
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return peer
    return peer


def _address(value: str | None) -> str | None:
    """``value`` as a normalised IP address, or None when it is not one (a server that rewrote
    the peer from a forwarding header may hand over anything)."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def ip_allowed(ip: str | None, allowlist: tuple[str, ...]) -> bool:
    """True when no allowlist is configured or ``ip`` is inside it."""
    networks = parse_networks(allowlist)
    if not networks:
        return True
    return ip is not None and _in(ip, networks)
