"""Connecting to the database and bringing its schema up to date with Alembic.

SQLite (aiosqlite, WAL) by default; PostgreSQL (asyncpg) when ``FIRSTREPLY_DATABASE_URL``
points at one. The same code runs on both. Migrations run at start-up under a PostgreSQL
advisory lock, so several engine processes starting together don't race.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 7_130_001  # any constant shared by every firstreply process
#: The newest migration's revision. A database already there skips Alembic entirely (importing it and reading
#: every migration costs a cold ``firstreply ask`` about a second); a test keeps this equal to Alembic's head.
HEAD_REVISION = "0011"


class DatabaseError(RuntimeError):
    """The database can't be reached or migrated; the message says which and why, without secrets."""


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite:///) and pick the async driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in {"postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str) -> AsyncEngine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:  # WAL lets readers work while one writer writes
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """The rows an INSERT, UPDATE or DELETE touched. Its result is a ``CursorResult``, which has the count;
    ``AsyncSession.execute`` is typed as returning any ``Result``, which has not."""
    return cast(CursorResult[Any], result).rowcount


def _is_current(connection: Connection) -> bool:
    """Whether the schema is already at :data:`HEAD_REVISION` (no Alembic needed to say so)."""
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception:  # no such table yet: a new database
        return False
    return [row[0] for row in rows] == [HEAD_REVISION]


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_file(engine: AsyncEngine) -> Path | None:
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    return Path(database) if database and database != ":memory:" else None


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to date; processes starting together take turns (PostgreSQL: an advisory
    lock; SQLite: a lock file beside the database)."""
    database = _sqlite_file(engine)
    lock = None
    if database is not None:
        import fcntl

        lock = open(database.with_name(database.name + ".migrate-lock"), "w")
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
    try:
        await _migrate(engine)
    finally:
        if lock is not None:
            lock.close()  # closing releases the lock


async def _migrate(engine: AsyncEngine) -> None:
    try:
        async with engine.connect() as connection:  # the common case: nothing to do, and nothing to import
            if await connection.run_sync(_is_current):
                return
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    except (OSError, ConnectionError) as error:
        raise DatabaseError(f"can't reach the database at {safe_url(str(engine.url))}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith(("sqlalchemy", "asyncpg")):
            raise DatabaseError(f"database {safe_url(str(engine.url))}: {error}".splitlines()[0]) from None
        raise
