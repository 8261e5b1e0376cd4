"""``firstreply github``: inspect and steer the GitHub App's jobs, drafts and repositories."""

from __future__ import annotations

from pathlib import Path

import click

from firstreply.cli.console import _failures_as_messages
from firstreply.cli.context import _settings


@click.group(name="github")
def github_group() -> None:
    """Inspect and steer the GitHub App's work: jobs, drafts, repositories."""


def _with_github_store(work):
    """Run ``work(store)`` on the App's tables in the engine's database (migrated first if needed)."""
    import asyncio

    from engine.store.database import create_engine, migrate
    from github_app.store import GitHubStore

    settings = _settings()

    async def main():
        database = create_engine(settings.database)
        try:
            await migrate(database)
            return await work(GitHubStore(database))
        finally:
            await database.dispose()

    with _failures_as_messages():
        return asyncio.run(main())


@github_group.command(name="jobs")
@click.option("--status", type=click.Choice(["queued", "running", "done", "failed"]), help="Only jobs with this status.")
@click.option("--limit", type=int, default=20, show_default=True)
def github_jobs(status: str | None, limit: int) -> None:
    """The newest webhook jobs: what each delivery did, and why a failed one failed."""
    jobs = _with_github_store(lambda store: store.jobs(status, limit))
    if not jobs:
        click.echo("no jobs")
    for job in jobs:
        detail = job.outcome if job.status == "done" else job.last_error or ""
        click.echo(f"{job.id:>6}  {job.status:<8} {job.kind:<26} attempts={job.attempts}  {detail}")


@github_group.command(name="retry")
@click.argument("job_id", type=int)
def github_retry(job_id: int) -> None:
    """Give a failed job another round of attempts (a running App picks it up)."""
    if not _with_github_store(lambda store: store.requeue(job_id)):
        raise click.ClickException(f"no failed job {job_id}")
    click.echo(f"job {job_id} queued again")


@github_group.command(name="drafts")
def github_drafts() -> None:
    """Replies waiting for a maintainer (review mode)."""
    drafts = _with_github_store(lambda store: store.replies("draft", 100))
    if not drafts:
        click.echo("no drafts")
    for reply in drafts:
        click.echo(f"[{reply.id}] {reply.repository}#{reply.discussion_number} {reply.discussion_url or ''}")
        click.echo((reply.body or "").strip())
        click.echo()


@github_group.command(name="approve")
@click.argument("reply_id", type=int)
@click.option("--by", required=True, help="Who approves (recorded on the reply).")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Post this corrected text instead of the draft.")
def github_approve(reply_id: int, by: str, body_file: Path | None) -> None:
    """Approve a draft; the running App posts it."""
    from github_app.store import ReplyConflict

    body = body_file.read_text() if body_file else None

    async def approve(store):
        try:
            return await store.approve_reply(reply_id, by, body)
        except ReplyConflict as conflict:
            raise click.ClickException(str(conflict)) from None

    if _with_github_store(approve) is None:
        raise click.ClickException(f"no reply {reply_id}")
    click.echo(f"draft {reply_id} approved; it will be posted")


@github_group.command(name="repos")
def github_repos() -> None:
    """Repositories the App is installed on, and whether replies are on."""
    repos = _with_github_store(lambda store: store.repositories())
    if not repos:
        click.echo("no repositories recorded yet (they arrive with installation events)")
    for repo in repos:
        state = "removed" if repo.removed else "on" if repo.enabled else "off"
        click.echo(f"{repo.id:>12}  {repo.full_name:<50} {state}")


@github_group.command(name="switch")
@click.argument("repository")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--by", help="Who switched it (recorded).")
def github_switch(repository: str, state: str, by: str | None) -> None:
    """Switch replies on or off for a repository (OWNER/NAME or id)."""
    repo = _with_github_store(lambda store: store.set_repository_enabled(repository, state == "on", by))
    if repo is None:
        raise click.ClickException(f"no repository {repository!r} (see `firstreply github repos`)")
    click.echo(f"replies are {state} for {repo.full_name}")
