"""The same store code on a real PostgreSQL server (127.0.0.1:5432), in a database of its own."""

import asyncio
import os
import uuid

import pytest

from engine.store.database import DatabaseError, create_engine, migrate
from engine.store.models import AnswerRecord
from engine.store.repository import HistoryTurn, Store

ADMIN_DSN = os.environ.get("FIRSTREPLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def postgres_url():
    name = f"firstreply_{uuid.uuid4().hex[:12]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncio.TimeoutError) as error:
        pytest.skip(f"PostgreSQL is not reachable at {ADMIN_DSN}: {error}")
    base, _, _ = ADMIN_DSN.rpartition("/")
    yield f"{base}/{name}"
    await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def record(answer_id: str, conversation: str | None = "thread-1") -> AnswerRecord:
    return AnswerRecord(id=answer_id, channel="discord", conversation_id=conversation, user_hash="u", kb="kb",
                        question="q?", search_query="q?", text="a [1]", abstained=False, confidence=0.5,
                        sources=[{"path": "docs/a.md", "dense": 0.5}], citations=[], model="extractive",
                        fallback_reasons=[], prompt_tokens=10, output_tokens=3, latency_ms=12, trimmed={})


async def test_migrations_answers_turns_and_votes_on_postgresql(postgres_url):
    store = await Store.open(postgres_url)
    try:
        await store.log_answer(record("a1"), [HistoryTurn("user", "q?", 2), HistoryTurn("assistant", "a [1]", 3)])
        await store.log_answer(record("a2"), [HistoryTurn("user", "again?", 2), HistoryTurn("assistant", "yes", 1)])
        assert [t.text for t in await store.history("thread-1")] == ["q?", "a [1]", "again?", "yes"]
        assert [t.text for t in await store.history("thread-1", limit=2)] == ["again?", "yes"]
        assert (await store.answer("a1")).sources == [{"path": "docs/a.md", "dense": 0.5}]
        assert await store.vote("a1", "user-1", 1) is True
        assert await store.vote("a1", "user-1", -1) is False
        assert await store.votes("a1") == {"up": 0, "down": 1}
        assert await store.count_answers() == 2
    finally:
        await store.close()


async def test_concurrent_starts_migrate_once(postgres_url):
    stores = await asyncio.gather(*(Store.open(postgres_url) for _ in range(4)))
    for store in stores:
        await store.ping()
        await store.close()


async def test_unreachable_database_is_a_clear_error_without_the_password():
    engine = create_engine("postgresql://firstreply:s3cret@127.0.0.1:9/none")
    with pytest.raises(DatabaseError) as raised:
        await migrate(engine)
    assert "127.0.0.1:9" in str(raised.value) and "s3cret" not in str(raised.value)
    await engine.dispose()
