"""Alembic environment: runs on the connection engine.store.database hands it (sync or async engine).

The chain also creates the GitHub App's tables (revision 0003); their models live in ``github_app.models``, which
the engine never imports. ``include_object`` makes autogenerate ignore any table the database has and the engine's
models don't, so it never proposes dropping the App's tables, whatever was imported first.
"""

from alembic import context
from sqlalchemy.schema import SchemaItem, Table

from engine.store.models import Base


def include_object(obj: SchemaItem, name: str | None, type_: str, reflected: bool,
                   compare_to: SchemaItem | None) -> bool:
    """Leave alone tables (and their parts) with no model in the engine's metadata: a frontend owns them."""
    table = obj if isinstance(obj, Table) else getattr(obj, "table", None)  # a table, or a column's or index's
    return not (reflected and table is not None and table.name not in Base.metadata.tables)


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=connection.dialect.name == "sqlite",
                  include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
