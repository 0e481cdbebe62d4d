"""Provider webhooks already taken in, so a replayed or re-sent delivery changes nothing.

A delivery is claimed before the job is signalled and released if signalling fails, so the
provider's own retry of that delivery gets through. Signatures older than the SDK's tolerance
(5 minutes) are refused before they get here, so old claims are only kept for the record and
can be pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from store.ledger import tables
from store.ledger.repository import utc_now


class WebhookDeliveries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(
        self, webhook_id: str, event_type: str, provider_id: str, *, now: datetime | None = None
    ) -> bool:
        """True the first time `webhook_id` is claimed, False for a replay or a duplicate."""
        row = {
            "webhook_id": webhook_id,
            "event_type": event_type,
            "provider_id": provider_id,
            "received_at": now or utc_now(),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(tables.WebhookDelivery).values(row))
        except IntegrityError:
            return False
        return True

    def release(self, webhook_id: str) -> None:
        """Forget a claim whose job could not be told, so the provider's retry is taken in."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(tables.WebhookDelivery).where(
                    tables.WebhookDelivery.webhook_id == webhook_id
                )
            )

    def is_claimed(self, webhook_id: str) -> bool:
        query = select(tables.WebhookDelivery.webhook_id).where(
            tables.WebhookDelivery.webhook_id == webhook_id
        )
        with self.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def prune(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Drop claims older than `older_than` (far past the signature tolerance)."""
        cutoff = (now or utc_now()) - older_than
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(tables.WebhookDelivery).where(tables.WebhookDelivery.received_at < cutoff)
            )
        return result.rowcount
