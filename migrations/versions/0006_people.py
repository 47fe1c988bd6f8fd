"""people: Employees and Clinicians records, each with the directory account SSPM provisioned for it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("organization", sa.String(length=256), nullable=False),
        sa.Column("given_name", sa.String(length=64), nullable=False),
        sa.Column("family_name", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("work_email", sa.String(length=256), nullable=False),
        sa.Column("pending_email", sa.String(length=256), nullable=True),
        sa.Column("job_title", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("manager_account_id", sa.String(length=64), nullable=True),
        sa.Column("manager_name", sa.String(length=256), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("college", sa.String(length=128), nullable=True),
        sa.Column("college_key", sa.String(length=128), nullable=True),
        sa.Column("registration_number", sa.String(length=32), nullable=True),
        sa.Column("specialty", sa.String(length=64), nullable=True),
        sa.Column("mobile", sa.String(length=20), nullable=True),
        sa.Column("search_text", sa.String(length=1024), nullable=False),
        sa.Column("set_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id"),
        sa.UniqueConstraint("username"),
        sa.UniqueConstraint("college_key", "registration_number", name="uq_person_registration"),
    )
    op.create_index("ix_person_record_kind", "person_record", ["kind"])
    op.create_index("ix_person_record_organization", "person_record", ["organization"])
    op.create_index("ix_person_record_status", "person_record", ["status"])


def downgrade() -> None:
    op.drop_index("ix_person_record_status", table_name="person_record")
    op.drop_index("ix_person_record_organization", table_name="person_record")
    op.drop_index("ix_person_record_kind", table_name="person_record")
    op.drop_table("person_record")
