"""directory_account: the synced copy of the directory's accounts; sync_checkpoint: where incremental sync resumes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_account",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=256), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("organization", sa.String(length=256), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("locked_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("must_change", sa.Boolean(), nullable=False),
        sa.Column("enrolled", sa.Boolean(), nullable=False),
        sa.Column("set_up", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index("ix_directory_account_organization", "directory_account", ["organization"])
    op.create_index("ix_directory_account_expires_at", "directory_account", ["expires_at"])
    op.create_index("ix_directory_account_locked", "directory_account", ["locked"])
    op.create_table(
        "sync_checkpoint",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("sync_checkpoint")
    op.drop_index("ix_directory_account_locked", table_name="directory_account")
    op.drop_index("ix_directory_account_expires_at", table_name="directory_account")
    op.drop_index("ix_directory_account_organization", table_name="directory_account")
    op.drop_table("directory_account")
