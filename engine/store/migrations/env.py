"""Alembic environment: runs on the connection engine.store.database hands it (sync or async engine)."""

from alembic import context

from engine.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
