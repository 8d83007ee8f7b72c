"""Residents' feedback, the console's question sets and its runs with their scored results, in the database.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("useful", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("outcome", sa.String(64)),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("prompt_version", sa.String(64), nullable=False),
        sa.Column("question", sa.Text),
    )
    op.create_index("ix_feedback_day", "feedback", ["day"])
    op.create_table(
        "question_sets",
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("cases", sa.Integer, nullable=False),
        sa.Column("changed", sa.String(32), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("set_name", sa.String(48), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started", sa.String(32), nullable=False),
        sa.Column("finished", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("corpus_hash", sa.String(128), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("gate", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("machine", sa.String(255), nullable=False),
        sa.Column("seen", sa.Float, nullable=False),
        sa.Column("stop_asked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_table(
        "run_results",
        sa.Column("run_id", sa.String(20), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("trace", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_results")
    op.drop_index("ix_runs_state", "runs")
    op.drop_table("runs")
    op.drop_table("question_sets")
    op.drop_index("ix_feedback_day", "feedback")
    op.drop_table("feedback")
