"""The intake's per-account copies of an order (webhooks.services._order_copy) are what
``copy.copy`` and assigning the account and values give, each with a state of its own."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from orders.models import Order
from webhooks.models import WebhookEvent
from webhooks.services import _order_copy


def _template(strategy: Any) -> Order:
    event = WebhookEvent(strategy=strategy, http_status=202)
    return Order(
        webhook=event,
        strategy=strategy,
        sequence=1,
        batch_index=2,
        market_type="SPOT",
        symbol="BTC/USDT",
        currency="USDT",
        side="buy",
        order_type="LIMIT",
        qty_per=Decimal("12.5"),
        price=Decimal("50000"),
        params={"reduce_only": True},
    )


@pytest.mark.django_db
def test_a_copy_is_what_copy_copy_and_assignment_give(make_strategy: Any, make_account: Any) -> None:
    accounts = [make_account("a1"), make_account("a2")]
    strategy = make_strategy(accounts=accounts)
    template = _template(strategy)
    trail = {"t0": 1764561906000000, "received": 0}
    expires = datetime(2026, 12, 1, tzinfo=UTC)

    def values(key: Any) -> dict[str, Any]:
        return {
            "id": key,
            "status": "pending_approval",
            "approval_expires_at": expires,
            "trail": trail,
            "client_order_id": "qt" + key.hex,
        }

    key = uuid4()
    mine = _order_copy(template, accounts[1], **values(key))
    theirs = copy.copy(template)
    theirs.account = accounts[1]
    for name, value in values(key).items():
        setattr(theirs, name, value)

    fields = {f.attname for f in Order._meta.concrete_fields}
    assert {n: getattr(mine, n) for n in fields} == {n: getattr(theirs, n) for n in fields}
    assert mine.account_id == accounts[1].pk
    cache = mine._state.fields_cache
    assert cache == theirs._state.fields_cache
    assert cache["account"] is accounts[1] and cache["webhook"] is template.webhook
    assert cache["strategy"] is strategy
    assert (mine._state.adding, mine._state.db) == (theirs._state.adding, theirs._state.db)
    # Its own state: the template and the other copies are untouched by what happens to it.
    assert mine._state is not template._state
    assert "account" not in template._state.fields_cache
    assert template.id != key and template.status == "queued" and template.trail == {}
    other = _order_copy(template, accounts[0], **values(uuid4()))
    mine._state.adding = False
    assert other._state.adding is True and other.account is accounts[0] and mine.account is accounts[1]
    assert other.params is mine.params is template.params  # JSON values shared, never modified


@pytest.mark.django_db
def test_copies_are_stored_with_their_own_key_and_account_and_the_shared_values(
    make_strategy: Any, make_account: Any
) -> None:
    from quanttrade.prepared import bulk_insert

    accounts = [make_account(f"a{i}") for i in range(3)]
    strategy = make_strategy(accounts=accounts)
    template = _template(strategy)
    template.webhook.save(force_insert=True)
    trail = {"t0": 1764561906000000, "received": 0}
    copies = []
    for account in accounts:
        key = uuid4()
        copies.append(_order_copy(template, account, id=key, trail=trail, client_order_id="qt" + key.hex))
    bulk_insert(copies)
    stored = {o.account_id: o for o in Order.objects.filter(webhook=template.webhook)}
    assert sorted(stored) == sorted(a.pk for a in accounts)
    for order in copies:
        row = stored[order.account_id]
        assert (row.pk, row.client_order_id, row.trail) == (order.pk, order.client_order_id, trail)
        assert (row.qty_per, row.price, row.params) == (
            Decimal("12.5"),
            Decimal("50000"),
            {"reduce_only": True},
        )
        assert row.strategy_id == strategy.pk and row.status == "queued"
