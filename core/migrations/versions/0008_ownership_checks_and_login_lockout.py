"""ownership checks and sign-in lockout: order postcodes, impressions' conversations, refused inputs,
staff sign-in failure counts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:40:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('shop_order') as batch:
        batch.add_column(sa.Column('postcode', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table('rec_impression') as batch:
        batch.add_column(sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False,
                                   server_default=''))
        batch.create_index('ix_rec_impression_conversation_id', ['conversation_id'], unique=False)
    op.create_table('refused_input',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_refused_input_kind'), 'refused_input', ['kind'], unique=False)
    op.create_index(op.f('ix_refused_input_conversation_id'), 'refused_input', ['conversation_id'], unique=False)
    op.create_index(op.f('ix_refused_input_created_at'), 'refused_input', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_refused_input_created_at'), table_name='refused_input')
    op.drop_index(op.f('ix_refused_input_conversation_id'), table_name='refused_input')
    op.drop_index(op.f('ix_refused_input_kind'), table_name='refused_input')
    op.drop_table('refused_input')
    with op.batch_alter_table('rec_impression') as batch:
        batch.drop_index('ix_rec_impression_conversation_id')
        batch.drop_column('conversation_id')
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('locked_until')
        batch.drop_column('failed_logins')
    with op.batch_alter_table('shop_order') as batch:
        batch.drop_column('postcode')
