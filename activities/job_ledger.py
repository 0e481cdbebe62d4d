"""Activities that write the job ledger: the job record and its audit trail."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity

from laneway.background import RECORD_JOB, RECORD_STATUS, BackgroundJobInput, StatusChange
from store.ledger.records import NewJob
from store.ledger.repository import Ledger


@dataclass
class LedgerActivities:
    ledger: Ledger

    @activity.defn(name=RECORD_JOB)
    async def record_background_job(self, job: BackgroundJobInput) -> None:
        """Written before the provider is called; repeating it changes nothing."""
        workflow_id = activity.info().workflow_id or job.job_id
        record = NewJob.background(job.job_id, workflow_id, job.spec)
        await asyncio.to_thread(self.ledger.record_job, record)

    @activity.defn(name=RECORD_STATUS)
    async def record_job_status(self, change: StatusChange) -> None:
        """A status change or a control action, audited once per event key."""
        to_status = change.to_status
        if to_status is None:
            await asyncio.to_thread(
                self.ledger.record_event,
                change.job_id,
                change.kind,
                change.event_key,
                change.actor,
                change.note,
            )
            return
        await asyncio.to_thread(
            lambda: self.ledger.record_status(
                change.job_id,
                to_status,
                change.event_key,
                change.actor,
                change.note,
                kind=change.kind,
                ends_job=change.ends_job,
            )
        )
