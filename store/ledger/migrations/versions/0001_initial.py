"""Jobs, their audit trail, provider ids and intents, results and side-effect claims.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _auto_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _job_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=f"fk_{table}_job_id_jobs")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("lane", sa.String(32), nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("workspace", sa.String(200), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_ids", _json(), nullable=False),
        sa.Column("input_summary", _json(), nullable=False),
        sa.Column("review_policy", sa.String(32), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_workflow_id", "jobs", ["workflow_id"])
    op.create_index("ix_jobs_workspace", "jobs", ["workspace"])

    op.create_table(
        "job_events",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        _job_fk("job_events"),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
        sa.UniqueConstraint("job_id", "event_key", name="uq_job_events_job_id_event_key"),
    )
    op.create_index("ix_job_events_job_id_id", "job_events", ["job_id", "id"])

    op.create_table(
        "job_provider_ids",
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("recorded_at", _timestamp(), nullable=False),
        _job_fk("job_provider_ids"),
        sa.PrimaryKeyConstraint("provider_id", name="pk_job_provider_ids"),
    )
    op.create_index("ix_job_provider_ids_job_id", "job_provider_ids", ["job_id"])

    op.create_table(
        "provider_intents",
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("resolved_at", _timestamp(), nullable=True),
        _job_fk("provider_intents"),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_provider_intents"),
    )
    op.create_index("ix_provider_intents_job_id", "provider_intents", ["job_id"])

    op.create_table(
        "results",
        sa.Column("id", _auto_id(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("output_uri", sa.String(1024), nullable=True),
        sa.Column("output_sha256", sa.String(64), nullable=True),
        sa.Column("output_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("output_media_type", sa.String(200), nullable=True),
        sa.Column("inline_output", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        # Exact money; SQLite has no exact decimal, so there it is text (tables.ExactDecimal).
        sa.Column(
            "cost_usd", sa.Numeric(20, 10).with_variant(sa.String(40), "sqlite"), nullable=True
        ),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        _job_fk("results"),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.UniqueConstraint("job_id", "attempt", name="uq_results_job_id_attempt"),
    )

    op.create_table(
        "side_effects",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("claimed_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        _job_fk("side_effects"),
        sa.PrimaryKeyConstraint("job_id", name="pk_side_effects"),
    )


def downgrade() -> None:
    for table in (
        "side_effects",
        "results",
        "provider_intents",
        "job_provider_ids",
        "job_events",
        "jobs",
    ):
        op.drop_table(table)
