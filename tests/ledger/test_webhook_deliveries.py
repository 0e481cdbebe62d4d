"""Webhook dedupe: a delivery id is taken in once, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.ledger import Ledger
from store.ledger.webhook_deliveries import WebhookDeliveries

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_delivery_is_claimed_once(ledger: Ledger) -> None:
    deliveries = WebhookDeliveries(ledger.engine)
    assert deliveries.claim("wh_1", "batch.completed", "batch_1")
    assert not deliveries.claim("wh_1", "batch.completed", "batch_1")
    assert deliveries.claim("wh_2", "batch.completed", "batch_1")  # another delivery, same batch


def test_a_released_claim_can_be_taken_again(ledger: Ledger) -> None:
    deliveries = WebhookDeliveries(ledger.engine)
    assert deliveries.claim("wh_1", "response.completed", "resp_1")
    deliveries.release("wh_1")
    assert not deliveries.is_claimed("wh_1")
    assert deliveries.claim("wh_1", "response.completed", "resp_1")


def test_prune_drops_only_old_claims(ledger: Ledger) -> None:
    deliveries = WebhookDeliveries(ledger.engine)
    deliveries.claim("wh_old", "batch.failed", "batch_1", now=T0)
    deliveries.claim("wh_new", "batch.failed", "batch_2", now=T0 + timedelta(days=3))
    assert deliveries.prune(timedelta(days=1), now=T0 + timedelta(days=3)) == 1
    assert not deliveries.is_claimed("wh_old")
    assert deliveries.is_claimed("wh_new")
