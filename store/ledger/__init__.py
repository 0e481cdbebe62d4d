"""The job ledger: jobs, their audit trail, results and side-effect claims, in SQL.

Use `Ledger` (repository.py) for reads and writes and `upgrade_to_head(url)` (migrate.py)
to create or update the schema; `python -m store.ledger upgrade` does the same.
"""

from store.ledger.migrate import upgrade_to_head
from store.ledger.records import (
    JobEvent,
    JobRecord,
    NewJob,
    ProviderIntent,
    ResultRecord,
    SideEffectRecord,
)
from store.ledger.repository import JobNotFound, Ledger, ProviderIdTaken

__all__ = [
    "JobEvent",
    "JobNotFound",
    "JobRecord",
    "Ledger",
    "NewJob",
    "ProviderIdTaken",
    "ProviderIntent",
    "ResultRecord",
    "SideEffectRecord",
    "upgrade_to_head",
]
