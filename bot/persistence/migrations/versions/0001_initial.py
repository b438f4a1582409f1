"""Initial schema: requests, append-only audit, card and conversation references, bot state.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("requester_aad_id", sa.String(64), nullable=False),
        sa.Column("requester_name", sa.Text(), nullable=False),
        sa.Column("requester_teams_id", sa.Text(), nullable=True),
        sa.Column("requester_upn", sa.Text(), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("target_upn", sa.Text(), nullable=False),
        sa.Column("target_display_name", sa.Text(), nullable=False),
        sa.Column("target_is_guest", sa.Boolean(), nullable=False),
        sa.Column("target_privileged", sa.Boolean(), nullable=False),
        sa.Column("privilege_reasons", sa.JSON(), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("previous_number", sa.String(64), nullable=True),
        sa.Column("notify", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("ticket", sa.Text(), nullable=True),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("approver_group", sa.String(16), nullable=True),
        sa.Column("decided_by_aad_id", sa.String(64), nullable=True),
        sa.Column("decided_by_name", sa.Text(), nullable=True),
        sa.Column("decided_by_teams_id", sa.Text(), nullable=True),
        sa.Column("decided_by_upn", sa.Text(), nullable=True),
        sa.Column("decided_at", _ts(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("outcome_kind", sa.String(32), nullable=True),
        sa.Column("locale", sa.String(32), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=True),
        sa.Column("executing_at", _ts(), nullable=True),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_target_id", "requests", ["target_id", "completed_at"])
    op.create_index("ix_requests_requester", "requests", ["requester_aad_id", "executing_at"])
    op.create_index("ix_requests_state_expires_at", "requests", ["state", "expires_at"])

    op.create_table(
        "audit",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("actor_aad_id", sa.String(64), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("target_upn", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_target_id_at", "audit", ["target_id", "at"])
    op.create_index("ix_audit_request_id", "audit", ["request_id"])

    op.create_table(
        "card_refs",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("conversation_reference", sa.JSON(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_card_refs"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name="fk_card_refs_request_id_requests", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_card_refs_request_id", "card_refs", ["request_id"])

    op.create_table(
        "conversation_refs",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_conversation_refs"),
    )

    op.create_table(
        "bot_state",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_bot_state"),
    )

    # The audit trail is append-only, in the database too.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'audit is append-only: UPDATE refused'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
            "BEGIN SELECT RAISE(ABORT, 'audit is append-only: DELETE refused'); END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_update_delete ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    op.drop_table("bot_state")
    op.drop_table("conversation_refs")
    op.drop_table("card_refs")
    op.drop_table("audit")
    op.drop_table("requests")
