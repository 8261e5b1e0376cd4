"""Start-up skips Alembic when the schema is already current, and that shortcut names the real head."""

import subprocess
import sys
import textwrap

from alembic.config import Config
from alembic.script import ScriptDirectory

from engine.store.database import HEAD_REVISION, MIGRATIONS


def test_head_revision_is_alembics_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_a_current_database_opens_without_importing_alembic(tmp_path):
    """Issue 15 item 13: a cold `firstreply ask` paid for importing Alembic and reading every migration."""
    url = f"sqlite:///{tmp_path / 'fr.db'}"
    probe = textwrap.dedent(f"""
        import asyncio, sys
        from engine.store.repository import Store

        async def main():
            store = await Store.open({url!r})
            await store.count_answers()
            await store.close()

        asyncio.run(main())
        print("alembic" in sys.modules)
    """)
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "True"  # a new database is migrated by Alembic
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "False", again.stderr
