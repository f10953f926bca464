"""Alembic environment: migrates the app tables, never Rasa's tracker tables."""

from alembic import context
from sqlalchemy import pool
from sqlmodel import SQLModel, create_engine

import core.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
RASA_TABLES = {"events"}


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Leave Rasa's tables alone when both share one database."""
    return not (type_ == "table" and name in RASA_TABLES)


def run() -> None:
    """Run migrations online against the configured URL."""
    url = config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=SQLModel.metadata,
            include_object=include_object,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run()
