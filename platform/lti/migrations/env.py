"""Alembic environment of the hub's LTI database (platform/lti/schema.py runs it).

Its own version table (`coursehub_lti_alembic_version`), so the LTI tables can share a database
with the hub's or the grading service's tables (e.g. one PostgreSQL at scale) without their
migrations seeing each other. Autogenerate compares against tables.py's metadata, which holds
every LTI table.
"""

from alembic import context

from coursehub.platform.lti.schema import VERSION_TABLE
from coursehub.platform.lti.tables import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]  # schema.upgrade's, inside its locked transaction
    context.configure(connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      version_table=VERSION_TABLE, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
