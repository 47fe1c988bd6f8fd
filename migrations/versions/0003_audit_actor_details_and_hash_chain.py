"""audit trail: actor, structured details, hash chain

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 06:30:00

Existing rows are kept and chained in the order they were written (by id):
rows written by the email worker (source "worker") get the job actor, the
others the anonymous visitor at their address (every flow so far ran
before or without signing in); a rate-limited request, whose action was
the endpoint's name, becomes the action "request" with the endpoint in its
details. The chain's digest (sspm.auditchain) is frozen: it is imported
here rather than copied because it can never change without breaking every
chain already written.
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from alembic import op

from sspm.policy.auditchain import GENESIS, Entry, digest

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The actions audited before this revision; any other action was an endpoint's name.
KNOWN_ACTIONS = frozenset(
    {"sign_in", "change", "enroll", "re-enroll", "reset_email_request", "reset_by_email", "forgot_reset", "unlock"}
    | {"sessions_ended"}
    | {f"{purpose}_{step}" for purpose in ("forgot", "unlock") for step in ("start", "answers")}
    | {
        f"email_{kind}"
        for kind in ("reset_link", "password_changed", "password_reset", "account_unlocked", "enrolled", "re_enrolled")
    }
)

audit_event = sa.table(
    "audit_event",
    sa.column("id", sa.Integer),
    sa.column("seq", sa.BigInteger),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor_kind", sa.String),
    sa.column("actor_id", sa.String),
    sa.column("actor_role", sa.String),
    sa.column("action", sa.String),
    sa.column("outcome", sa.String),
    sa.column("account_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("source_ip", sa.String),
    sa.column("details", sa.JSON),
    sa.column("prev_digest", sa.String),
    sa.column("digest", sa.String),
)
audit_chain_head = sa.table(
    "audit_chain_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger), sa.column("digest", sa.String)
)


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("actor_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("actor_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("actor_role", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("prev_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    bind = op.get_bind()
    seq, prev = 0, GENESIS
    rows = bind.execute(
        sa.select(
            audit_event.c.id,
            audit_event.c.at,
            audit_event.c.action,
            audit_event.c.outcome,
            audit_event.c.account_id,
            audit_event.c.subject,
            audit_event.c.source_ip,
        ).order_by(audit_event.c.id)
    ).all()
    updates = []
    for row in rows:
        seq += 1
        worker = row.source_ip == "worker"
        action, details = row.action, {}
        if action not in KNOWN_ACTIONS:
            action, details = "request", {"endpoint": row.action}
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        entry = Entry(
            seq=seq,
            at=at,
            actor_kind="job" if worker else "anonymous",
            actor_id="worker" if worker else None,
            actor_role=None,
            action=action,
            outcome=row.outcome,
            account_id=row.account_id,
            subject=row.subject,
            source_ip=row.source_ip,
            details=details,
        )
        mine = digest(entry, prev)
        updates.append(
            {
                "row_id": row.id,
                "seq": seq,
                "actor_kind": entry.actor_kind,
                "actor_id": entry.actor_id,
                "action": action,
                "details": details,
                "prev_digest": prev,
                "digest": mine,
            }
        )
        prev = mine
    if updates:
        bind.execute(
            audit_event.update()
            .where(audit_event.c.id == sa.bindparam("row_id"))
            .values(
                seq=sa.bindparam("seq"),
                actor_kind=sa.bindparam("actor_kind"),
                actor_id=sa.bindparam("actor_id"),
                action=sa.bindparam("action"),
                details=sa.bindparam("details", type_=sa.JSON),
                prev_digest=sa.bindparam("prev_digest"),
                digest=sa.bindparam("digest"),
            ),
            updates,
        )
    bind.execute(audit_chain_head.insert().values(id=1, seq=seq, digest=prev))

    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        for column in ("seq", "actor_kind", "details", "prev_digest", "digest"):
            batch_op.alter_column(column, nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        for column in ("digest", "prev_digest", "details", "actor_role", "actor_id", "actor_kind", "seq"):
            batch_op.drop_column(column)
