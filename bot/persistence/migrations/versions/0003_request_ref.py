"""Short request references: requests.ref ("MFA-7K3Q9", bot/persistence/refs.py) and its unique index.

Requests stored before this migration get a reference here, drawn at random and distinct from each other, so
`status` finds every request by its reference. The column stays nullable: SQLite can only make it NOT NULL by
rebuilding the table, which would cascade-delete card_refs; the store never writes NULL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.persistence.refs import new_ref

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

# the requests table as this revision knows it (not bot.persistence.store's model, which later revisions may change)
_requests = sa.table("requests", sa.column("id", sa.String()), sa.column("ref", sa.String()))


def upgrade() -> None:
    op.add_column("requests", sa.Column("ref", sa.String(16), nullable=True))

    bind = op.get_bind()
    given: set[str] = set()
    update = (
        sa.update(_requests)
        .where(_requests.c.id == sa.bindparam("row_id"))
        .values(ref=sa.bindparam("new_ref"))
    )
    after: str | None = None
    while True:
        statement = sa.select(_requests.c.id).order_by(_requests.c.id).limit(_BATCH)
        if after is not None:
            statement = statement.where(_requests.c.id > after)
        ids = bind.execute(statement).scalars().all()
        if not ids:
            break
        changes = []
        for row_id in ids:
            ref = new_ref()
            while ref in given:
                ref = new_ref()
            given.add(ref)
            changes.append({"row_id": row_id, "new_ref": ref})
        bind.execute(update, changes)
        after = ids[-1]

    # after the backfill: the index checks every reference once, and would refuse duplicates
    op.create_index("ix_requests_ref", "requests", ["ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_requests_ref", table_name="requests")
    op.drop_column("requests", "ref")
