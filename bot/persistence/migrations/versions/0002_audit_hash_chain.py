"""Audit hash chain: prev_hash and hash on every audit row (bot/persistence/audit.py).

Rows written before this migration are chained here, in id order from the genesis value, so the chain covers the
whole trail; it shows changes made from now on (what happened to a row before this migration cannot be known).
The append-only triggers are set aside for the UPDATE that fills the two columns, inside this migration's
transaction, and are back before it commits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.persistence.audit_chain import GENESIS, HASHED_FIELDS, row_hash

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

# the audit table as this revision knows it (not bot.persistence.store's model, which later revisions may change)
_audit = sa.table(
    "audit",
    sa.column("id", sa.BigInteger()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("event", sa.String()),
    sa.column("request_id", sa.String()),
    sa.column("actor_aad_id", sa.String()),
    sa.column("actor_name", sa.Text()),
    sa.column("target_id", sa.String()),
    sa.column("target_upn", sa.Text()),
    sa.column("details", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)

_SQLITE_NO_UPDATE = (  # as 0001 created it
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit is append-only: UPDATE refused'); END"
)


def upgrade() -> None:
    op.add_column("audit", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit", sa.Column("hash", sa.String(64), nullable=True))

    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(_audit)).scalar_one() == 0:
        return
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete")
    else:
        op.execute("DROP TRIGGER audit_no_update")

    prev_hash = GENESIS
    after: int | None = None
    update = (
        sa.update(_audit)
        .where(_audit.c.id == sa.bindparam("row_id"))
        .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash"))
    )
    while True:
        statement = sa.select(*(_audit.c[name] for name in HASHED_FIELDS)).order_by(_audit.c.id).limit(_BATCH)
        if after is not None:
            statement = statement.where(_audit.c.id > after)
        rows = bind.execute(statement).mappings().all()
        if not rows:
            break
        changes = []
        for row in rows:
            digest = row_hash(dict(row), prev_hash)
            changes.append({"row_id": row["id"], "new_prev": prev_hash, "new_hash": digest})
            prev_hash = digest
        bind.execute(update, changes)
        after = rows[-1]["id"]

    if postgresql:
        op.execute("ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete")
    else:
        op.execute(_SQLITE_NO_UPDATE)


def downgrade() -> None:
    op.drop_column("audit", "hash")
    op.drop_column("audit", "prev_hash")
