"""``firstreply maintainer``: who may sign in to the review pages."""

from __future__ import annotations

import click

from firstreply.cli.context import _with_engine


@click.group(name="maintainer")
def maintainer_group() -> None:
    """Who may sign in to the review pages."""


@maintainer_group.command(name="add")
@click.argument("name")
def maintainer_add(name: str) -> None:
    """Create a maintainer and print their sign-in token (shown once: only its hash is kept)."""
    token = _with_engine(lambda engine: engine.review_service.add_maintainer(name))
    click.echo(f"maintainer {name!r} added; their sign-in token (it won't be shown again):")
    click.echo(token)


@maintainer_group.command(name="list")
def maintainer_list() -> None:
    """Every maintainer and when they were last seen."""
    for m in _with_engine(lambda engine: engine.review_service.maintainers()):
        seen = m.last_seen_at.strftime("%Y-%m-%d %H:%M") if m.last_seen_at else "never"
        click.echo(f"{m.name:<30} added {m.created_at:%Y-%m-%d}  last seen {seen}")


@maintainer_group.command(name="remove")
@click.argument("name")
def maintainer_remove(name: str) -> None:
    """Revoke a maintainer's token."""
    if not _with_engine(lambda engine: engine.review_service.remove_maintainer(name)):
        raise click.ClickException(f"no maintainer {name!r}")
    click.echo(f"maintainer {name!r} removed")
