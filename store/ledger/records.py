"""What the ledger takes and gives back: plain pydantic values, never ORM objects."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from laneway.batch import BatchJobSpec
from laneway.jobs import ArtifactRef, JobSpec, Usage
from laneway.status import JobFacts, Lane, ProductStatus, allowed_actions


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class NewJob(_Record):
    """A job as first recorded, before the provider is called."""

    job_id: str = Field(min_length=1, max_length=128)
    workflow_id: str = Field(min_length=1, max_length=255)
    lane: Lane
    job_type: str
    workspace: str
    requested_by: str
    review_policy: str
    input_summary: dict[str, Any]
    status: ProductStatus = ProductStatus.QUEUED

    @classmethod
    def background(cls, job_id: str, workflow_id: str, spec: JobSpec) -> NewJob:
        return cls(
            job_id=job_id,
            workflow_id=workflow_id,
            lane=Lane.BACKGROUND,
            job_type=spec.job_type,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
            review_policy=spec.review_policy.value,
            input_summary=spec.input_summary().model_dump(mode="json"),
        )

    @classmethod
    def batch(cls, job_id: str, workflow_id: str, spec: BatchJobSpec) -> NewJob:
        template = spec.template
        summary = {
            "input": spec.input.model_dump(mode="json"),
            "input_format": spec.input_format.value,
            "endpoint": template.endpoint if template else spec.endpoint,
            "model": template.model if template else None,
            "bad_lines": spec.bad_lines.value,
            "shard_limits": spec.shard_limits.model_dump(),
            "max_rounds": spec.max_rounds,
            "side_effect": spec.side_effect.kind if spec.side_effect else None,
            "side_effect_destination": (
                spec.side_effect.destination() if spec.side_effect else None
            ),
        }
        return cls(
            job_id=job_id,
            workflow_id=workflow_id,
            lane=Lane.BATCH,
            job_type=spec.job_type,
            workspace=spec.workspace,
            requested_by=spec.requested_by,
            review_policy=spec.review_policy.value,
            input_summary=summary,
        )


class JobRecord(_Record):
    job_id: str
    workflow_id: str
    lane: Lane
    job_type: str
    workspace: str
    requested_by: str
    status: ProductStatus
    attempts: int
    provider_ids: list[str]
    input_summary: dict[str, Any]
    review_policy: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None
    archived_at: datetime | None = None
    archived_by: str | None = None

    def allowed_actions(self) -> list[str] | None:
        """What an ended job takes (archive, until it is archived); None while the job runs:
        only its workflow knows then."""
        if self.ended_at is None:
            return None
        facts = JobFacts(status=self.status, open=False, archived=self.archived_at is not None)
        return allowed_actions(facts)


class JobEvent(_Record):
    id: int
    job_id: str
    event_key: str
    kind: str
    from_status: ProductStatus | None
    to_status: ProductStatus | None
    actor: str
    note: str
    at: datetime


class ProviderIntent(_Record):
    """A provider create recorded before the call; `provider_id` once the call answered."""

    idempotency_key: str
    job_id: str
    attempt: int
    operation: str
    provider_id: str | None
    created_at: datetime
    resolved_at: datetime | None


class ResultRecord(_Record):
    job_id: str
    attempt: int
    output: ArtifactRef | None
    inline_output: str | None
    usage: Usage
    cost_usd: Decimal | None
    model: str
    tier: str
    created_at: datetime


class SideEffectRecord(_Record):
    job_id: str
    kind: str
    outcome: str | None
    note: str
    claimed_at: datetime
    finished_at: datetime | None
