"""Alembic environment: runs on the connection the event store passes in
``config.attributes["connection"]``, inside the caller's transaction (which holds the lock
that keeps concurrent workers from migrating at once)."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "recsys_schema_version"  # not alembic_version: MLflow may share the database

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
