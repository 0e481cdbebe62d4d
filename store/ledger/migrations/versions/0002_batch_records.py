"""Batch records: one row per input record of a batch job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch_records",
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("custom_id", sa.String(512), nullable=False),
        sa.Column("line_no", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(128), nullable=True),
        sa.Column("output_uri", sa.String(1024), nullable=True),
        sa.Column("output_offset", sa.BigInteger(), nullable=True),
        sa.Column("output_length", sa.Integer(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name="fk_batch_records_job_id_jobs"),
        sa.PrimaryKeyConstraint("job_id", "custom_id", name="pk_batch_records"),
    )
    op.create_index("ix_batch_records_job_id_line_no", "batch_records", ["job_id", "line_no"])
    op.create_index(
        "ix_batch_records_job_id_round_shard", "batch_records", ["job_id", "round", "shard"]
    )


def downgrade() -> None:
    op.drop_table("batch_records")
