"""Caller verification: how the caller was verified (method, who must answer, who answered and when) on every
request, the one-time codes (hashed) and the Teams card of the person asked, and the locks that keep a user's
phone methods out of reach after they said "No, I did not ask".

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


_PERSON = ("verifier", "verified_by")


def upgrade() -> None:
    op.add_column("requests", sa.Column("verification", sa.String(16), nullable=True))
    for prefix in _PERSON:
        op.add_column("requests", sa.Column(f"{prefix}_aad_id", sa.String(64), nullable=True))
        op.add_column("requests", sa.Column(f"{prefix}_name", sa.Text(), nullable=True))
        op.add_column("requests", sa.Column(f"{prefix}_teams_id", sa.Text(), nullable=True))
        op.add_column("requests", sa.Column(f"{prefix}_upn", sa.Text(), nullable=True))
    op.add_column("requests", sa.Column("verified_at", _ts(), nullable=True))

    op.create_table(
        "verifications",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("code_salt", sa.String(64), nullable=True),
        sa.Column("code_hash", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_via", sa.String(16), nullable=True),
        sa.Column("card_ref", sa.JSON(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_verifications"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_verifications_request_id_requests", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "target_locks",
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("locked_until", _ts(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", name="pk_target_locks"),
    )


def downgrade() -> None:
    op.drop_table("target_locks")
    op.drop_table("verifications")
    op.drop_column("requests", "verified_at")
    for prefix in reversed(_PERSON):
        for column in ("upn", "teams_id", "name", "aad_id"):
            op.drop_column("requests", f"{prefix}_{column}")
    op.drop_column("requests", "verification")
