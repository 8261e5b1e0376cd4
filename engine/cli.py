"""The ``firstreply`` command line: ingest, search, ask, evaluate.

Every command builds the engine from validated settings; a bad setting or an engine error
ends the command with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import errno
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.config import ConfigError, Settings, load_settings
from engine.logs import configure as configure_logging

err = Console(stderr=True)
out = Console()


def _settings(**overrides) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _engine(settings: Settings):
    from engine.service import Engine

    return Engine(settings)


@contextmanager
def _failures_as_messages(data_dir: Path | None = None):
    """Known failures as one line; any failure while the data folder's disk is full as that (the stores say
    things like "InternalError: Error in compaction" when they run out of space)."""
    from engine.index.embedder import EmbeddingModelError
    from engine.index.vectors import VectorStoreError
    from engine.store.database import DatabaseError

    try:
        yield
    except Exception as error:
        full = _disk_full(data_dir) if data_dir is not None else None
        if full is None and _out_of_space(error):  # the space may be free again by now (temporary files removed)
            full = (f"the disk{f' holding {data_dir}' if data_dir else ''} ran out of space: free some space and run "
                    "it again; the index is as it was before this run")
        if full is not None:
            raise click.ClickException(full) from error  # the chain stays for --debug and logs
        if isinstance(error, (EmbeddingModelError, VectorStoreError, DatabaseError, ConfigError, FileNotFoundError,
                              ValueError, OSError)):
            raise click.ClickException(str(error)) from None
        raise


def _out_of_space(error: BaseException) -> bool:
    """Whether ``error``, or any error in its chain, is the disk running out of space (ENOSPC, EDQUOT, or
    SQLite's "database or disk is full"), however the store that met it worded its own error."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return True
        if "no space left on device" in str(current).lower() or "database or disk is full" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


DISK_NEARLY_FULL_BYTES = 64 * 1024 * 1024


def _disk_full(data_dir: Path) -> str | None:
    import shutil

    folder = data_dir.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= DISK_NEARLY_FULL_BYTES:
        return None
    return (f"the disk holding {data_dir} is full ({free // 1024:,} KiB free): free some space and run it again; "
            "the index is as it was before this run")


@contextmanager
def _progress(enabled: bool):
    if not enabled:
        yield None
        return
    with Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


@click.group()
@click.version_option(package_name="firstreply")
def cli() -> None:
    """firstreply: answers your community's questions from your project's own docs."""


@cli.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-url", help="Repository web URL, so chunks link to …/blob/<ref>/<path>#L<a>-L<b>.")
@click.option("--ref", help="Git ref (tag, branch or commit) for links; read from the checkout when omitted.")
@click.option("--kb", help="Knowledge base name (default: FIRSTREPLY_KB).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def ingest(path: Path, repo_url: str | None, ref: str | None, kb: str | None, as_json: bool) -> None:
    """Index the docs, examples and source under PATH (incrementally), repairing whatever the index lacks."""
    import asyncio

    settings = _settings(kb=kb)

    async def run(progress):
        async with _engine(settings) as engine:  # the golden records, in the database, are indexed too
            report = await engine.aingest(path, repo_url=repo_url, ref=ref, progress=progress)
            if settings.query_encoder != "torch":  # export and verify the question graph now, once, so `ask` needs no torch
                await asyncio.to_thread(engine.embedder.use_onnx_for_queries, settings.data_dir / "onnx",
                                        settings.query_encoder == "onnx-int8")
            return report

    with _failures_as_messages(settings.data_dir), _progress(not as_json and err.is_terminal) as progress:
        report = asyncio.run(run(progress))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    out.print(f"[bold]{settings.kb}[/]: {report.summary()}", soft_wrap=True)  # one line, however narrow
    for rel_path, reason in report.unreadable:
        err.print(f"[yellow]unreadable[/] {rel_path}: {reason}")


@cli.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--kb", help="Knowledge base name.")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
def search(query: str, k: int, kb: str | None, as_json: bool) -> None:
    """Show the passages that hybrid retrieval finds for QUERY."""
    settings = _settings(kb=kb)
    with _failures_as_messages():
        hits = _engine(settings).search(query, k=k)
    if as_json:
        click.echo(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        out.print("No results. Has this knowledge base been ingested? Try [bold]firstreply ingest PATH[/].")
    for rank, hit in enumerate(hits, start=1):
        dense = f"{hit.dense:.2f}" if hit.dense is not None else "–"
        out.print(f"[bold]{rank}.[/] {hit.chunk.header}  [dim](similarity {dense})[/]")
        out.print(f"   [link={hit.chunk.url}]{hit.chunk.url}[/link]", soft_wrap=True)


@cli.command()
@click.argument("question")
@click.option("--kb", help="Knowledge base name.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask(question: str, kb: str | None, as_json: bool) -> None:
    """Answer QUESTION from the knowledge base, with cited sources."""
    settings = _settings(kb=kb)
    answer = _ask_running_server(settings, question)
    if answer is None:
        with _failures_as_messages():
            answer = _engine(settings).ask(question, kb=settings.kb)
    if as_json:
        click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(answer.text)
    if answer.citations:
        click.echo("\nSources:")
        for citation in answer.citations:
            click.echo(f"  [{citation.number}] {citation.label()} — {citation.url}")


def _ask_running_server(settings: Settings, question: str):
    """The answer from the server running on this data folder (it has the model loaded: no start-up cost), or
    None when there is none, or it can't answer (then the CLI answers by itself)."""
    import asyncio

    from engine.local_server import running_server

    url = running_server(settings.data_dir)
    if url is None:
        return None
    from engine.answer.model import Question
    from engine.client import EngineClient, EngineError, EngineUnavailable

    async def once():
        key = settings.engine_api_key.get_secret_value() if settings.engine_api_key else None
        async with EngineClient(url, key, timeout=120) as client:
            return await client.answer(Question(question, channel="api", kb=settings.kb))

    try:
        return asyncio.run(once())
    except (EngineError, EngineUnavailable, OSError, asyncio.TimeoutError) as error:
        err.print(f"[dim]the server at {url} didn't answer ({error}); answering here[/]", soft_wrap=True)
        return None


@cli.group(name="eval")
def eval_group() -> None:
    """Measure retrieval and answer quality on labelled questions."""


@eval_group.command(name="retrieval")
@click.option("--corpus", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--queries", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qrels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--k", "k", type=click.IntRange(1, 100), default=10, show_default=True, help="Chunks retrieved per question.")
@click.option("--kb", help="Knowledge base to ingest the corpus into (default: eval-<corpus folder name>).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--per-query", is_flag=True, help="With --json: include each question's ranking.")
def eval_retrieval(corpus: Path, queries: Path, qrels: Path, k: int, kb: str | None, as_json: bool, per_query: bool) -> None:
    """Ingest CORPUS (incrementally) and report page-level Recall@1/3/5/10 and MRR@10."""
    from engine.evaluation.retrieval import evaluate, load_queries

    kb = kb or f"eval-{corpus.resolve().parent.name}-{corpus.resolve().name}"[:64].strip("-_")
    settings = _settings(kb=kb)
    with _failures_as_messages():
        labelled = load_queries(queries, qrels)
        engine = _engine(settings)
        with _progress(not as_json and err.is_terminal) as progress:
            engine.ingest(corpus, progress=progress)
        # Retrieve more chunks than pages asked for, so ten distinct pages can be ranked.
        report = evaluate(labelled, lambda q: [h.chunk.path for h in engine.search(q.question, k=max(k, 10) * 3, title=q.title)])
    if as_json:
        click.echo(json.dumps(report.as_dict(with_queries=per_query), indent=2))
        return
    out.print(f"{report.queries} labelled questions on {corpus}")
    for cutoff, value in report.recall.items():
        out.print(f"  Recall@{cutoff:<3} {value:.3f}")
    out.print(f"  MRR@10    {report.mrr_at_10:.3f}")


def _bound(message: str, settings: Settings) -> str:
    """The address the server really listens on (``--port 0`` picks one), from aiohttp's "Running on …" line."""
    import re

    found = re.findall(r"https?://\S+?(?=[\s)]|$)", message)
    return ", ".join(found) if found else f"http://{settings.host}:{settings.port}"


def serving_plan(settings: Settings, pinned: bool) -> tuple[Settings, str | None]:
    """Which knowledge base answers by default, and the warning to shout when there is nothing to answer from.

    Unpinned, every ingested base is served; the default is FIRSTREPLY_KB when it was ingested, else the first
    ingested one (not an empty "default" that abstains on everything)."""
    from engine.service import ingested_kbs

    found = ingested_kbs(settings)
    if pinned:
        if settings.kb in found:
            return settings, None
        hint = f" (ingested: {', '.join(found)})" if found else ""
        return settings, (f"Nothing to answer from: knowledge base {settings.kb!r} has not been ingested{hint}. "
                          f"Run `firstreply ingest PATH --kb {settings.kb}`; until then every answer abstains.")
    if not found:
        return settings, (f"Nothing to answer from: no knowledge base has been ingested in {settings.data_dir}. "
                          "Run `firstreply ingest PATH --kb NAME`; until then every answer abstains.")
    if settings.kb not in found:
        settings = settings.model_copy(update={"kb": found[0]})
    return settings, None


@cli.command()
@click.option("--host", help="Address to listen on (default: FIRSTREPLY_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: FIRSTREPLY_PORT, 8080).")
@click.option("--kb", help="Serve only this knowledge base (default: every ingested one).")
def serve(host: str | None, port: int | None, kb: str | None) -> None:
    """Run the engine's HTTP API and pages, answering from every ingested knowledge base (or only --kb)."""

    from aiohttp import web

    from engine.api.app import build_app
    from engine.local_server import announce, withdraw
    from engine.service import Engine

    settings, nothing = serving_plan(_settings(host=host, port=port, kb=kb), pinned=kb is not None)
    if nothing:
        err.print(f"[bold red]{nothing}[/]", soft_wrap=True)
    if settings.embedding_threads is None:
        settings = settings.model_copy(update={"embedding_threads": 1})
    configure_logging(settings)
    if not settings.api_keys:
        err.print("[yellow]No FIRSTREPLY_API_KEYS set: only clients on this machine will be served.[/]")
    with _failures_as_messages():
        try:
            app = build_app(Engine(settings, pinned_kb=kb is not None))  # a missing GitHub App setting stops here
            def listening(message: str) -> None:
                bound = _bound(message, settings)
                announce(settings.data_dir, bound.split(", ")[0])  # `firstreply ask` uses this server from now on
                out.print(f"firstreply engine on {bound}", soft_wrap=True)

            try:
                web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=listening)
            finally:
                withdraw(settings.data_dir)
        except ConfigError as error:  # e.g. the Discord token, checked at start-up
            raise click.ClickException(str(error)) from None


@cli.command(name="discord")
def discord_command() -> None:
    """Run the Discord bot alone: against FIRSTREPLY_ENGINE_URL, or with the engine in this process."""
    import asyncio

    from bot.run import run_bot
    from engine.client import EngineClient

    settings = _settings()
    configure_logging(settings)

    async def main() -> None:
        if settings.engine_url:
            key = settings.engine_api_key.get_secret_value() if settings.engine_api_key else None
            async with EngineClient(str(settings.engine_url), key) as client:
                await run_bot(settings, client)
        else:
            async with _engine(settings) as engine:
                await run_bot(settings, engine)

    with _failures_as_messages():
        try:
            asyncio.run(main())
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            pass


@cli.command(name="github-app")
@click.option("--host", help="Address to listen on (default: FIRSTREPLY_HOST).")
@click.option("--port", type=int, help="Port (default: FIRSTREPLY_PORT).")
def github_app_command(host: str | None, port: int | None) -> None:
    """Run the GitHub App alone: the webhook and its workers, against FIRSTREPLY_ENGINE_URL or an engine in process."""

    from aiohttp import web

    from engine.client import EngineClient
    from github_app.run import build_standalone

    settings = _settings(host=host, port=port)
    configure_logging(settings)
    if settings.engine_url:
        key = settings.engine_api_key.get_secret_value() if settings.engine_api_key else None
        answerer = EngineClient(str(settings.engine_url), key)
    else:
        answerer = _engine(settings)
    with _failures_as_messages():
        try:
            app = build_standalone(settings, answerer)
            web.run_app(app, host=settings.host, port=settings.port, access_log=None,
                        print=lambda _: out.print(f"firstreply GitHub App on http://{settings.host}:{settings.port}/github/webhook"))
        except ConfigError as error:
            raise click.ClickException(str(error)) from None


@cli.group(name="secrets")
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


@cli.group(name="github")
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


def _with_engine(work):
    """Run ``work(engine)`` with the engine started (database open), then close it."""
    import asyncio

    from engine.store.review import ReviewError

    settings = _settings()

    async def main():
        async with _engine(settings) as engine:
            return await work(engine)

    with _failures_as_messages():
        try:
            return asyncio.run(main())
        except ReviewError as error:
            raise click.ClickException(str(error)) from None


@cli.group(name="maintainer")
def maintainer_group() -> None:
    """Who may sign in to the review pages."""


@maintainer_group.command(name="add")
@click.argument("name")
def maintainer_add(name: str) -> None:
    """Create a maintainer and print their sign-in token (shown once: only its hash is kept)."""
    token = _with_engine(lambda engine: engine.review.add_maintainer(name))
    click.echo(f"maintainer {name!r} added; their sign-in token (it won't be shown again):")
    click.echo(token)


@maintainer_group.command(name="list")
def maintainer_list() -> None:
    """Every maintainer and when they were last seen."""
    for m in _with_engine(lambda engine: engine.review.maintainers()):
        seen = m.last_seen_at.strftime("%Y-%m-%d %H:%M") if m.last_seen_at else "never"
        click.echo(f"{m.name:<30} added {m.created_at:%Y-%m-%d}  last seen {seen}")


@maintainer_group.command(name="remove")
@click.argument("name")
def maintainer_remove(name: str) -> None:
    """Revoke a maintainer's token."""
    if not _with_engine(lambda engine: engine.review.remove_maintainer(name)):
        raise click.ClickException(f"no maintainer {name!r}")
    click.echo(f"maintainer {name!r} removed")


@cli.group(name="review")
def review_group() -> None:
    """Review logged answers from the command line (the same actions as the review pages)."""


@review_group.command(name="list")
@click.option("--channel", type=click.Choice(["discord", "github", "api", "web"]))
@click.option("--verdict", type=click.Choice(["unreviewed", "approved", "corrected", "rejected"]))
@click.option("--votes", type=click.Choice(["down", "up", "none"]))
@click.option("--search", "text", help="Text in the question or answer.")
@click.option("--page", type=int, default=1, show_default=True)
def review_list(channel, verdict, votes, text, page) -> None:
    """Answers, 👎 first, then newest."""
    from engine.store.review import AnswerFilter

    chosen = AnswerFilter(channel=channel, verdict=verdict, votes=votes, text=text, page=page)
    rows, more = _with_engine(lambda engine: engine.review.answers(chosen))
    for r in rows:
        click.echo(f"{r.id}  {r.verdict:<10} {r.channel:<8} +{r.up_votes}/-{r.down_votes}  {r.question[:80]}")
    if more:
        click.echo(f"(more: --page {page + 1})")


@review_group.command(name="show")
@click.argument("answer_id")
def review_show(answer_id: str) -> None:
    """One answer: question, answer, sources, verdict."""
    detail = _with_engine(lambda engine: engine.review.detail(answer_id))
    if detail is None:
        raise click.ClickException(f"no answer {answer_id}")
    r = detail["record"]
    click.echo(f"{r.channel} · {r.model} · {r.verdict} · +{r.up_votes}/-{r.down_votes} · {r.created_at:%Y-%m-%d %H:%M}")
    click.echo(f"Q: {r.question}\n\nA: {r.text}")
    if r.corrected_text:
        click.echo(f"\nCorrected ({r.reviewed_by}): {r.corrected_text}")
    for source in r.sources:
        click.echo(f"  - {source.get('path')} {source.get('score', 0):.3f}")


def _review(answer_id: str, verdict: str, by: str, text: str | None = None, reason: str | None = None) -> None:
    async def act(engine):
        try:
            return await engine.review_answer(answer_id, verdict, by, text=text, reason=reason)
        except LookupError:
            raise click.ClickException(f"no answer {answer_id}") from None

    _record, golden = _with_engine(act)
    click.echo(f"{answer_id}: {verdict}" + (f" (golden record #{golden.id})" if golden else ""))


@review_group.command(name="approve")
@click.argument("answer_id")
@click.option("--by", required=True)
def review_approve(answer_id: str, by: str) -> None:
    """Approve an answer: it becomes a golden record."""
    _review(answer_id, "approved", by)


@review_group.command(name="correct")
@click.argument("answer_id")
@click.option("--by", required=True)
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def review_correct(answer_id: str, by: str, text_file: Path) -> None:
    """Correct an answer (the original is kept) and approve the correction."""
    _review(answer_id, "corrected", by, text=text_file.read_text())


@review_group.command(name="reject")
@click.argument("answer_id")
@click.option("--by", required=True)
@click.option("--reason", required=True)
def review_reject(answer_id: str, by: str, reason: str) -> None:
    """Reject an answer, saying why."""
    _review(answer_id, "rejected", by, reason=reason)


@cli.group(name="golden")
def golden_group() -> None:
    """Golden records: export them, or import question/answer pairs from CSV."""


@golden_group.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
def golden_export(fmt: str) -> None:
    """Print every golden record as JSONL or CSV."""

    async def export(engine):
        return engine.review.export_golden(await engine.review.all_golden_records(), fmt)

    click.echo(_with_engine(export), nl=False)


@golden_group.command(name="import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", required=True)
def golden_import(csv_file: Path, by: str) -> None:
    """Add the question/answer pairs of a CSV file (with a header row) and index them."""

    async def load(engine):
        result = await engine.review.import_golden_csv(csv_file.read_text(encoding="utf-8-sig"), by)
        await engine.sync_golden()
        return result

    result = _with_engine(load)
    click.echo(f"{result['added']} added, {len(result['skipped'])} skipped")
    for skipped in result["skipped"]:
        click.echo(f"  line {skipped['line']}: {skipped['reason']}")


class TunableProvider(click.Choice):
    """The providers with a tuning backend, read from the provider registry when the option is used: loading
    the providers at import would slow every command down."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self):
        from engine.llm.registry import tunable_kinds

        return tuple(tunable_kinds())

    @choices.setter
    def choices(self, _value) -> None:
        pass  # click.Choice.__init__ sets it; the registry is the only source


@cli.group(name="tune")
def tune_group() -> None:
    """Fine-tuning: train a model on the golden records, evaluate it, activate it (or roll back)."""


def _job_line(job) -> str:
    model = f"  model {job.model_id}" if job.model_id else ""
    error = f"  error: {job.error}" if job.error else ""
    grant = f"  grant to {job.grantee}: {job.grant_state}" + (f" ({job.grant_error})" if job.grant_error else "") \
        if job.grant_state else ""
    step = (job.provider_progress or {}).get("step")
    progress = f"{job.progress:5.1f}%" if job.progress is not None else f"step {step}" if step else "    – "
    return (f"{job.id}  {job.status:<16} {progress}  {job.alias}  "
            f"({job.base_llm['model_provider']}:{job.base_llm['model_name']}){model}{error}{grant}")


@tune_group.command(name="create")
@click.option("--alias", required=True)
@click.option("--provider", type=TunableProvider(), required=True)
@click.option("--model", "model_name", required=True, help="Base model, e.g. gemini-1.5-flash-001-tuning or gpt-4o-mini.")
@click.option("--epochs", type=int, help="n_epochs: passes over the training set.")
@click.option("--batch-size", type=int)
@click.option("--learning-rate", type=float, help="An absolute learning rate (Gemini only).")
@click.option("--learning-rate-multiplier", type=float, help="A multiple of the provider's default learning rate.")
@click.option("--golden-record", "records", type=int, multiple=True, help="Train on these only (default: all).")
@click.option("--by", help="Who asks (recorded).")
def tune_create(alias, provider, model_name, epochs, batch_size, learning_rate, learning_rate_multiplier, records, by) -> None:
    """Queue a tuning job (checked as `POST /api/v1/finetunings` checks it); `firstreply serve` (or `firstreply tune
    run`) carries it out."""
    parameters = {k: v for k, v in {"n_epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                                    "learning_rate_multiplier": learning_rate_multiplier}.items() if v is not None}
    base = {"model_provider": provider, "model_name": model_name, "model_parameters": parameters}
    job = _with_engine(lambda engine: engine.create_tuning(alias, base, list(records) or None, {}, by))
    click.echo(_job_line(job))


@tune_group.command(name="list")
def tune_list() -> None:
    """Every tuning job, newest first."""
    for job in _with_engine(lambda engine: engine.tuning.jobs()):
        click.echo(_job_line(job))


@tune_group.command(name="status")
@click.argument("job_id")
def tune_status(job_id: str) -> None:
    """One job in full, with its evaluation when there is one."""
    job = _with_engine(lambda engine: engine.tuning.job(job_id))
    if job is None:
        raise click.ClickException(f"no tuning job {job_id}")
    click.echo(_job_line(job))
    if job.evaluation:
        click.echo(json.dumps(job.evaluation, indent=2))


@tune_group.command(name="cancel")
@click.argument("job_id")
def tune_cancel(job_id: str) -> None:
    """Stop a job (a queued one at once; a running one at the runner's next look)."""
    job = _with_engine(lambda engine: engine.tuning.request_cancel(job_id))
    if job is None:
        raise click.ClickException(f"no unfinished tuning job {job_id}")
    click.echo(_job_line(job))


@tune_group.command(name="grant")
@click.argument("job_id")
def tune_grant(job_id: str) -> None:
    """Try again to share a job's tuned Gemini model with FIRSTREPLY_TUNED_MODEL_GRANTEE (after the grant failed)."""

    from engine.store.review import ReviewError

    async def grant(engine):
        try:
            return await engine.retry_grant(job_id)
        except LookupError:
            raise click.ClickException(f"no tuning job {job_id}") from None
        except ReviewError as error:
            raise click.ClickException(str(error)) from None

    job = _with_engine(grant)
    if job is None:
        raise click.ClickException(f"no failed grant to retry on job {job_id}")
    click.echo(_job_line(job))


@tune_group.command(name="evaluate")
@click.argument("job_id")
def tune_evaluate(job_id: str) -> None:
    """Compare the tuned model with the current one on the job's held-out questions."""

    async def evaluate(engine):
        try:
            return await engine.evaluate_tuning(job_id)
        except LookupError:
            raise click.ClickException(f"no tuning job {job_id}") from None

    click.echo(json.dumps(_with_engine(evaluate), indent=2))


@tune_group.command(name="activate")
@click.argument("job_id")
@click.option("--by", required=True)
@click.option("--no-fallback", is_flag=True, help="Don't keep the base model as the first fallback.")
def tune_activate(job_id: str, by: str, no_fallback: bool) -> None:
    """Make a succeeded job's model the engine's (evaluated first, if it wasn't)."""

    async def activate(engine):
        try:
            return await engine.activate_tuning(job_id, by, fallback=not no_fallback)
        except LookupError:
            raise click.ClickException(f"no tuning job {job_id}") from None

    activation = _with_engine(activate)
    click.echo(f"{activation.model} is now the engine's model" + (f" (fallback {activation.fallback})" if activation.fallback else ""))


@tune_group.command(name="rollback")
@click.option("--by", required=True)
def tune_rollback(by: str) -> None:
    """Undo the last activation."""
    ended = _with_engine(lambda engine: engine.rollback_model(by))
    if ended is None:
        raise click.ClickException("no activation is in force")
    click.echo(f"{ended.model} is no longer the engine's model")


@tune_group.command(name="export")
@click.option("--provider", type=TunableProvider(), required=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--variant", type=click.Choice(["rag", "plain"]), help="Default: FIRSTREPLY_TUNING_VARIANT.")
def tune_export(provider: str, fmt: str, variant: str | None) -> None:
    """Print the training set in the provider's format; what validation dropped goes to stderr."""
    body, dropped = _with_engine(lambda engine: engine.training_set(provider, fmt, variant))
    click.echo(body, nl=False)
    for item in dropped:
        err.print(f"dropped golden record {item['record_id']}: {item['reason']}")


@tune_group.command(name="run")
def tune_run() -> None:
    """Run the tuning runner in the foreground (`firstreply serve` runs one too)."""
    import asyncio

    import aiohttp

    settings = _settings()
    configure_logging(settings)

    async def main():
        async with _engine(settings) as engine, aiohttp.ClientSession() as session:
            await engine.tuning_runner(session).run_forever()

    with _failures_as_messages():
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
