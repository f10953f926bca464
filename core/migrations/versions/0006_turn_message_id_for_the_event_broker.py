"""turn.message_id: one key for a user message whether it came from the tracker store or the event broker

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:30:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('turn') as batch:
        batch.alter_column('tracker_event_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch.create_index('ix_turn_message_id', ['message_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('turn') as batch:
        batch.drop_index('ix_turn_message_id')
        batch.drop_column('message_id')
        batch.alter_column('tracker_event_id', existing_type=sa.Integer(), nullable=False)
