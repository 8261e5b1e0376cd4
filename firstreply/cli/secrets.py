"""``firstreply secrets``: the secrets every engine on one database shares."""

from __future__ import annotations

import click

from firstreply.cli.console import _failures_as_messages
from firstreply.cli.context import _settings


@click.group(name="secrets")
def secrets_group() -> None:
    """The secrets every engine on one database shares (kept there, or their fingerprints)."""


SHARED_SECRETS = {"session-secret": ("FIRSTREPLY_SESSION_SECRET", "session_secret", 32,
                                     "every browser session and maintainer sign-in ends"),
                  "user-salt": ("FIRSTREPLY_USER_SALT", "user_salt", 16,
                                "users get new pseudonyms: a vote made before counts apart from one made after")}


@secrets_group.command(name="forget")
@click.argument("name", type=click.Choice(sorted(SHARED_SECRETS)))
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def secrets_forget(name: str, yes: bool) -> None:
    """Rotate a shared secret: the database forgets the old value and keeps a new one (the fingerprint of the
    setting given here, else a generated value). Stop every engine first; start them all with the same setting."""
    import asyncio

    from engine.store.database import create_engine, migrate
    from engine.store.shared_secrets import SharedSecrets

    setting, field, generated_bytes, consequence = SHARED_SECRETS[name]
    settings = _settings()  # not the engine: its start-up would refuse the very disagreement this resolves
    configured = getattr(settings, field)
    new = f"the value of {setting} set here" if configured is not None else "a newly generated value"
    if not yes:
        click.confirm(f"Forget the shared {name} and keep {new} instead? Stop every engine on this database first: "
                      f"{consequence}. Then start each engine with {'the same ' + setting if configured is not None else setting + ' unset'}.",
                      abort=True)

    async def main() -> None:
        database = create_engine(settings.database)
        try:
            await migrate(database)
            await SharedSecrets(database).forget(name, configured, generated_bytes)
        finally:
            await database.dispose()

    with _failures_as_messages():
        asyncio.run(main())
    click.echo(f"forgot the old shared {name}; every engine must now start with "
               + (f"the same {setting}" if configured is not None else f"{setting} unset"))
