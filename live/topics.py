"""Topic families of ``/ws`` beyond the fixed staff topics: ``<name>:<key>`` topics (such as
``price:BINANCE:BTC/USDT``) whose meaning belongs to the app that registers them in its
``AppConfig.ready``. The consumer asks the family to normalise a key, name its channel-layer
group and, right after a subscribe, read the current state as one frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TopicFamily:
    name: str
    normalize: Callable[[str], str | None]
    group: Callable[[str], str]
    # The frame sent right after a subscribe (called in a worker thread: it may read the DB).
    snapshot: Callable[[str], str | None]


_families: dict[str, TopicFamily] = {}


def register(family: TopicFamily) -> None:
    _families[family.name] = family


def family_of(topic: str) -> tuple[TopicFamily, str] | None:
    """(family, key) of a ``name:key`` topic whose family is registered, else None."""
    name, sep, key = topic.partition(":")
    family = _families.get(name.lower()) if sep else None
    return (family, key) if family is not None else None
