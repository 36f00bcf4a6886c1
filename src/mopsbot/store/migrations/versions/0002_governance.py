"""governance: requesters and sealed envelopes on actions, structured change fields, campaign versions, audit chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mopsbot.audit.chain import GENESIS, row_hash

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION mopsbot_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION mopsbot_audit_chain() RETURNS trigger AS $$
DECLARE head RECORD;
BEGIN
  SELECT last_id, last_hash INTO head FROM audit_head WHERE id = 1;
  IF head IS NULL OR NEW.id <> head.last_id + 1 OR NEW.prev_hash IS DISTINCT FROM head.last_hash THEN
    RAISE EXCEPTION 'audit_events only accepts the next row of the chain';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION mopsbot_audit_head_forward() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.last_id <> OLD.last_id + 1
     OR NEW.last_hash IS DISTINCT FROM (SELECT row_hash FROM audit_events WHERE id = NEW.last_id) THEN
    RAISE EXCEPTION 'audit_head only moves forward to the newest audit row';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""

SQLITE_TRIGGERS = (
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers; refusing any id that exists stops it
    """CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    WHEN NEW.id <> (SELECT last_id FROM audit_head WHERE id = 1) + 1
      OR NEW.prev_hash IS NOT (SELECT last_hash FROM audit_head WHERE id = 1)
      OR EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'audit_events only accepts the next row of the chain'); END""",
    """CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
    WHEN NEW.id <> OLD.id OR NEW.last_id <> OLD.last_id + 1
      OR NEW.last_hash IS NOT (SELECT row_hash FROM audit_events WHERE id = NEW.last_id)
    BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward to the newest audit row'); END""",
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'audit_head cannot be removed'); END""",
)

PG_TRIGGERS = (
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION mopsbot_audit_append_only()",
    "CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION mopsbot_audit_chain()",
    "CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head "
    "FOR EACH ROW EXECUTE FUNCTION mopsbot_audit_head_forward()",
    "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION mopsbot_audit_append_only()",
)


def _chain_existing_rows() -> tuple[int, str]:
    """Give rows written before the chain existed their hashes, oldest first; returns the new head."""
    bind = op.get_bind()
    audit = sa.table(
        "audit_events",
        sa.column("id", AutoId),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("event", sa.String),
        sa.column("subject_type", sa.String),
        sa.column("subject_id", sa.String),
        sa.column("data", sa.JSON),
        sa.column("prev_hash", sa.String),
        sa.column("row_hash", sa.String),
    )
    last_id, last = 0, GENESIS
    for row in bind.execute(sa.select(audit).order_by(audit.c.id)).all():
        digest = row_hash(
            id=row.id,
            at=row.at,
            actor=row.actor,
            event=row.event,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            data=row.data,
            prev_hash=last,
        )
        bind.execute(audit.update().where(audit.c.id == row.id).values(prev_hash=last, row_hash=digest))
        last_id, last = row.id, digest
    return last_id, last


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("pending_actions") as batch:
        batch.add_column(sa.Column("requesters", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("category", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("routing_reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("provenance", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("policy_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("envelope_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("change_requests") as batch:
        batch.add_column(sa.Column("category", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("fields", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("requesters", sa.JSON(), nullable=True))
    op.create_table(
        "campaign_versions",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("config_sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["pending_actions.id"], name=op.f("fk_campaign_versions_action_id_pending_actions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_versions")),
        sa.UniqueConstraint("campaign", "version", name=op.f("uq_campaign_versions_campaign")),
        sa.UniqueConstraint("action_id", name=op.f("uq_campaign_versions_action_id")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", AutoId, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # the chain's columns are filled for old rows with the append-only triggers lifted, inside this migration only
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    last_id, last_hash = _chain_existing_rows()
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(length=64), nullable=False)
    op.execute(
        sa.text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, :i, :h)").bindparams(i=last_id, h=last_hash)
    )
    if postgres:
        op.execute(PG_FUNCTIONS)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION mopsbot_audit_append_only()"
        )
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS audit_events_chain ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
    else:
        for name in ("audit_events_chain", "audit_head_forward", "audit_head_no_delete", "audit_events_no_update",
                     "audit_events_no_delete"):  # fmt: skip
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
    if postgres:
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION mopsbot_audit_append_only()"
        )
        op.execute("DROP FUNCTION IF EXISTS mopsbot_audit_chain()")
        op.execute("DROP FUNCTION IF EXISTS mopsbot_audit_head_forward()")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )
    op.drop_table("audit_head")
    op.drop_table("campaign_versions")
    with op.batch_alter_table("change_requests") as batch:
        for column in ("requesters", "fields", "category"):
            batch.drop_column(column)
    with op.batch_alter_table("pending_actions") as batch:
        for column in ("envelope_hash", "policy_version", "provenance", "routing_reasons", "category", "requesters"):
            batch.drop_column(column)
