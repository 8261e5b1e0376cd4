"""``firstreply history``: the community's answered threads, imported as past answers and candidate golden records.

``history import github OWNER/REPO`` reads the repository's answered Discussions (the accepted answer, or the
maintainers' replies when none is marked) through GitHub's GraphQL API, with ``FIRSTREPLY_GITHUB_TOKEN`` or the
App's installation token. Each page is stored with the cursor after it, so a second run reads only discussions
updated since, and a run stopped part-way resumes after the last page stored. ``history list|accept|reject``
review the candidates from the command line (the review pages and ``/api/v1/history`` do the same).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import click

from firstreply.cli.context import _with_engine

REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")


@click.group(name="history")
def history_group() -> None:
    """The community's answered threads: import them, review the candidates."""


@history_group.group(name="import")
def import_group() -> None:
    """Import answered threads from a source (incremental and resumable: a cursor per source)."""


async def _github_caller(github, session, repository: str):
    """A GraphQL caller for ``repository``: the configured token's, or else the App's installation's."""
    from github_app.api import GitHubAPI
    from github_app.history import token_caller

    api_url = str(github.api_url).rstrip("/")
    endpoint = str(github.graphql_url).rstrip("/") if github.graphql_url else f"{api_url}/graphql"
    if github.token is not None:
        gh = GitHubAPI(session, "firstreply-history", oauth_token=github.token.get_secret_value(), base_url=api_url)
        return token_caller(gh, endpoint)
    from github_app.api import GitHubClient
    from github_app.config import app_config, configured

    if not configured(github):
        raise click.ClickException("set FIRSTREPLY_GITHUB_TOKEN (a token that reads Discussions), or configure the "
                                   "GitHub App (FIRSTREPLY_GITHUB_APP_ID, …) installed on the repository")
    client = GitHubClient(app_config(github), session)
    installation = await client.repository_installation(repository)
    if installation is None:
        raise click.ClickException(f"the GitHub App is not installed on {repository}")
    return lambda query, variables: client.graphql(int(installation["id"]), query, **variables)


async def import_github(engine, repository: str, call, *, page_size: int = 50, sleep=None) -> Counter:
    """Import ``repository``'s answered discussions into the engine's review store, from where the last run
    stopped; the past answers are indexed at the end (also when the import stops part-way)."""
    from github_app.history import DiscussionHistory

    review = engine.review_service
    source = f"github:{repository}"
    options = {"sleep": sleep} if sleep is not None else {}
    reader = DiscussionHistory(call, opt_out=engine.settings.core.history_opt_out, page_size=page_size, **options)
    totals: Counter = Counter(new=0, updated=0, unchanged=0, unanswered=0, **{"opted out": 0})
    try:
        async for page in reader.pages(repository, await review.history_cursor(source)):
            counts = await review.save_history_page(source, list(page.threads),
                                                    page.cursor)
            totals.update(counts)
            totals.update(page.skipped)
            totals["pages"] += 1
    finally:
        await review.index_past_answers()
    return totals


@import_group.command(name="github")
@click.argument("repository")
@click.option("--page-size", type=click.IntRange(1, 100), default=50, show_default=True,
              help="Discussions per GraphQL request (GitHub allows 100).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def import_github_command(repository: str, page_size: int, as_json: bool) -> None:
    """Import OWNER/REPO's answered Discussions as past answers and candidate golden records."""
    if not REPOSITORY.fullmatch(repository):
        raise click.ClickException(f"{repository!r} is not OWNER/REPO")

    async def work(engine):
        import aiohttp

        from github_app.api import PermanentError, TransientError

        async with aiohttp.ClientSession() as session:
            call = await _github_caller(engine.settings.github, session, repository)
            try:
                return await import_github(engine, repository, call, page_size=page_size)
            except (PermanentError, TransientError) as error:
                raise click.ClickException(f"import stopped (run it again to resume): {error}") from None

    totals = _with_engine(work)
    if as_json:
        click.echo(json.dumps(dict(totals)))
        return
    click.echo(f"github:{repository}: {totals['new']} new, {totals['updated']} updated, {totals['unchanged']} unchanged; "
               f"skipped {totals['unanswered']} unanswered, {totals['opted out']} opted out")


@history_group.command(name="list")
@click.option("--status", type=click.Choice(["candidate", "accepted", "rejected"]), default="candidate",
              show_default=True)
@click.option("--page", type=click.IntRange(1), default=1)
def history_list(status: str, page: int) -> None:
    """Imported threads with this status (the candidates wait for a maintainer)."""
    rows, more = _with_engine(lambda engine: engine.review_service.past_threads(status, page))
    if not rows:
        click.echo(f"no {status} threads")
    for row in rows:
        click.echo(f"[{row.id}] {row.title}  {row.url}  ({row.answer_kind} answer)")
    if more:
        click.echo(f"… more: --page {page + 1}")


@history_group.command(name="accept")
@click.argument("thread_id", type=int)
@click.option("--by", required=True, help="Who accepts it (recorded).")
def history_accept(thread_id: int, by: str) -> None:
    """Make a candidate a golden record."""
    _row, golden = _with_engine(lambda engine: engine.review_service.accept_past_thread(thread_id, by))
    click.echo(f"thread {thread_id} accepted: golden record {golden.id}")


@history_group.command(name="reject")
@click.argument("thread_id", type=int)
@click.option("--by", required=True, help="Who rejects it (recorded).")
def history_reject(thread_id: int, by: str) -> None:
    """Hide a candidate: no longer searched nor listed."""
    _with_engine(lambda engine: engine.review_service.reject_past_thread(thread_id, by))
    click.echo(f"thread {thread_id} rejected")
