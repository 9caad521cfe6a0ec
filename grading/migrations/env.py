"""Alembic environment for the grading database.

Three branches, each with its own declarative base: the exchange (`coursehub.grading.models`,
`versions/`), the autograde queue (`coursehub.grading.queue.models`, `jobs/`) and the LMS outbox
(`coursehub.grading.lms.models`, `lms/`). Autogenerate compares against all three, so it never
proposes dropping another branch's tables.
"""

from alembic import context

from coursehub.grading.db import make_engine
from coursehub.grading.lms.models import Base as LmsBase
from coursehub.grading.models import Base as ExchangeBase
from coursehub.grading.queue.models import JobsBase

config = context.config
target_metadata = [ExchangeBase.metadata, JobsBase.metadata, LmsBase.metadata]


def _migrate(connection) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:  # the caller's transaction (db.check_schema's, under the schema lock): it commits
        _migrate(given)
        return
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _migrate(connection)
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
