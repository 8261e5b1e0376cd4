"""The knowledge commands: ``ingest``, ``search``, ``ask`` and ``eval``."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from pathlib import Path

import click

from engine.config import Settings
from firstreply.cli.console import _failures_as_messages, _progress, err, out
from firstreply.cli.context import _engine, _settings


@click.command()
@click.argument("source", metavar="PATH_OR_GIT_URL")
@click.option("--repo-url", help="Repository web URL, so chunks link to …/blob/<ref>/<path>#L<a>-L<b>.")
@click.option("--ref", help="Git ref (tag, branch or commit) for links; read from the checkout when omitted. "
                            "With a git URL, the branch or tag to clone (default: the default branch).")
@click.option("--kb", help="Knowledge base name (default: for a git URL the repository's name, and with --ref "
                            "<name>-<ref>, e.g. tinyviz-v1-2-0; else FIRSTREPLY_KB).")
@click.option("--watch", is_flag=True, help="Keep running: look for changes every --interval seconds and ingest "
                                            "what changed (a folder's files, or new commits of a git URL).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds between looks, with --watch.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def ingest(source: str, repo_url: str | None, ref: str | None, kb: str | None, watch: bool, interval: float,
           as_json: bool) -> None:
    """Index the docs, examples and source under PATH (incrementally), repairing whatever the index lacks.

    A git URL (https://…, ssh://…, git@host:path or file://…) is cloned into the data folder, shallow, the
    first time, and fetched on later runs; its chunks link to the repository at the commit it holds."""
    from engine.config import versioned_kb_name
    from engine.ingest.remote import BadGitUrl, looks_like_git_url, parse_git_url

    url = source if looks_like_git_url(source) or source.startswith("-") else None
    if url is not None:
        try:
            name = parse_git_url(url).name
        except BadGitUrl as error:
            raise click.BadParameter(str(error), param_hint="PATH_OR_GIT_URL") from None
        path = None
        # A release tag (or another branch) is a knowledge base of its own beside the default branch's, its
        # links at the tag, so an answer from it says which version it applies to.
        kb = kb or (versioned_kb_name(name, ref) if ref else name)
    else:
        path = Path(source)
        if not path.is_dir():
            why = "is not a folder" if path.exists() else "does not exist"
            raise click.BadParameter(f"Directory {source!r} {why}.", param_hint="PATH_OR_GIT_URL")
    settings = _settings(kb=kb)
    with _failures_as_messages(settings.core.data_dir):
        if watch:
            _watch(settings, path, url, repo_url, ref, interval, as_json)
            return
        with _progress(not as_json and err.is_terminal) as progress:
            report = asyncio.run(_ingest_once(settings, path, url, repo_url, ref, progress))
    _print_report(settings, report, as_json)


async def _ingest_once(settings: Settings, path: Path | None, url: str | None, repo_url: str | None, ref: str | None,
                       progress, engine=None):
    """One ingest of the folder, or of the git URL's clone after bringing it up to date (with ``engine``, started,
    or one started for this run)."""
    if engine is None:
        async with _engine(settings) as started:  # the golden records, in the database, are indexed too
            return await _ingest_once(settings, path, url, repo_url, ref, progress, started)
    if url is not None:
        path = (await _sync(engine, url, ref)).path
    report = await engine.aingest(path, repo_url=repo_url, ref=ref, progress=progress)
    if settings.index.query_encoder != "torch":  # export and verify the question graph now, once, so `ask` needs no torch
        await asyncio.to_thread(engine.embedder.use_onnx_for_queries, settings.core.data_dir / "onnx",
                                settings.index.query_encoder == "onnx-int8")
    return report


async def _sync(engine, url: str, ref: str | None):
    from engine.ingest.remote import GitFailed

    try:
        return await asyncio.to_thread(engine.sync_remote, url, ref=ref)
    except GitFailed as error:
        raise click.ClickException(str(error)) from None


def _print_report(settings: Settings, report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    out.print(f"[bold]{settings.core.kb}[/]: {report.summary()}", soft_wrap=True)  # one line, however narrow
    for rel_path, reason in report.unreadable:
        err.print(f"[yellow]unreadable[/] {rel_path}: {reason}")


def _watch(settings: Settings, path: Path | None, url: str | None, repo_url: str | None, ref: str | None,
           interval: float, as_json: bool) -> None:
    """Ingest, then every ``interval`` seconds look for a change (a folder's files by name, size and time; a git
    URL by fetching it) and ingest again only when there is one, until Ctrl-C or SIGTERM. A run under way
    finishes first, so the index is never left half-written; a failed look or run is reported and retried."""
    import signal

    from engine.ingest.remote import GitFailed
    from engine.ingest.sources import snapshot

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with _engine(settings) as engine:
            seen: str | None = None
            while not stop.is_set():
                try:
                    if url is not None:
                        checkout = await asyncio.to_thread(engine.sync_remote, url, ref=ref)
                        current, folder = checkout.commit, checkout.path
                    else:
                        current, folder = await asyncio.to_thread(snapshot, path), path
                    if current != seen:
                        report = await _ingest_once(settings, folder, None, repo_url, ref, None, engine)
                        _print_report(settings, report, as_json)
                        seen = current
                except (GitFailed, OSError, ValueError) as error:  # the remote or disk may be back next time
                    err.print(f"[yellow]ingest failed[/] ({error}); trying again in {interval:g} s", soft_wrap=True)
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except TimeoutError:
                    pass
        err.print("stopped watching", highlight=False)

    asyncio.run(main())


@click.command()
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


@click.command()
@click.argument("question")
@click.option("--kb", help="Knowledge base name.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask(question: str, kb: str | None, as_json: bool) -> None:
    """Answer QUESTION from the knowledge base, with cited sources."""
    from engine.answer.model import Answer

    settings = _settings(kb=kb)
    served = _ask_running_server(settings, question)
    if served is not None:
        answer = Answer.from_dict(served)
    else:
        with _failures_as_messages(), _collector_paused():
            _import_bm25s_without_scipy()
            answer = _engine(settings).ask(question, kb=settings.core.kb)
    if as_json:
        click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(answer.text)
    if answer.citations:
        click.echo("\nSources:")
        for citation in answer.citations:
            click.echo(f"  [{citation.number}] {citation.label()} — {citation.url}")


@contextmanager
def _collector_paused():
    """No cyclic garbage collection while one question is answered in process: importing the engine, Chroma,
    SQLAlchemy and ONNX Runtime creates hundreds of thousands of objects, and the collections they trigger cost
    a cold ask about a tenth of its CPU time (``bench/cli_cold.py``); what the one answer leaves is freed after."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import_bm25s_without_scipy() -> None:
    """Import bm25s without letting it import SciPy (~0.2 s of a cold ask's CPU time, ``bench/cli_cold.py``).

    bm25s imports ``scipy.sparse`` only to offer it as an optional backend for building an index's matrix
    (``csc_backend="scipy"``), which the keyword index does not use (it builds with bm25s's default, NumPy);
    loading a saved index and scoring a question use NumPy alone. Nothing is changed when SciPy or bm25s is
    already imported, and SciPy can be imported normally afterwards."""
    import sys

    if "bm25s" in sys.modules or "scipy" in sys.modules:
        return
    sys.modules["scipy"] = None  # type: ignore[assignment]  # the documented way to make an import fail
    try:
        import bm25s  # noqa: F401
    except ImportError:  # a bm25s that needs SciPy after all: forget the half import, the engine imports it whole
        for name in [name for name in sys.modules if name == "bm25s" or name.startswith("bm25s.")]:
            del sys.modules[name]
    finally:
        del sys.modules["scipy"]


def _ask_running_server(settings: Settings, question: str) -> dict | None:
    """The answer (as ``POST /v1/answer`` returns it) from the server running on this data folder, which has the
    model and the index loaded, or None when there is none or it didn't answer (then the CLI answers by itself).
    One plain HTTP request: a command answered this way imports no index, store, Chroma, NumPy or aiohttp."""
    from firstreply import local_server

    server = local_server.find(settings.core.data_dir)
    if server is None:
        return None
    key = settings.core.engine_api_key.get_secret_value() if settings.core.engine_api_key else None
    try:
        return local_server.ask(server, question, kb=settings.core.kb, api_key=key)
    except local_server.ServerDidNotAnswer as error:
        from rich.markup import escape

        err.print(f"[dim]the server at {escape(server.url)} didn't answer ({escape(str(error))}); answering here[/]",
                  soft_wrap=True, highlight=False)
        return None


@click.group(name="eval")
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
@click.option("--with-model", is_flag=True, help="Also report the figures with each model-assisted retrieval step "
              "(rewrite, hyde, rerank, then all three) on the configured provider, within the steps' budgets.")
def eval_retrieval(corpus: Path, queries: Path, qrels: Path, k: int, kb: str | None, as_json: bool, per_query: bool,
                   with_model: bool) -> None:
    """Ingest CORPUS (incrementally) and report page-level Recall@1/3/5/10 and MRR@10.

    With --with-model, one more row per retrieval step that uses the model (FIRSTREPLY_PROVIDERS must name one),
    each with how many times the step was skipped (over its deadline, failed, or an unusable reply)."""
    import asyncio

    from engine.evaluation.retrieval import evaluate, load_queries

    kb = kb or f"eval-{corpus.resolve().parent.name}-{corpus.resolve().name}"[:64].strip("-_")
    settings = _settings(kb=kb)
    if with_model and not settings.answer.providers:
        raise click.UsageError("--with-model needs a model: set FIRSTREPLY_PROVIDERS (and its key)")
    with _failures_as_messages():
        labelled = load_queries(queries, qrels)
        engine = _engine(settings)
        with _progress(not as_json and err.is_terminal) as progress:
            engine.ingest(corpus, progress=progress)
        # Retrieve more chunks than pages asked for, so ten distinct pages can be ranked.
        report = evaluate(labelled, lambda q: [h.chunk.path for h in engine.search(q.question, k=max(k, 10) * 3, title=q.title)])
        rows = asyncio.run(_model_rows(engine, settings, labelled, max(k, 10) * 3)) if with_model else {}
    if as_json:
        data = report.as_dict(with_queries=per_query)
        if with_model:
            data["with_model"] = {name: {**row.as_dict(with_queries=per_query), "skipped": skipped}
                                  for name, (row, skipped) in rows.items()}
        click.echo(json.dumps(data, indent=2))
        return
    out.print(f"{report.queries} labelled questions on {corpus}")
    if not with_model:
        for cutoff, value in report.recall.items():
            out.print(f"  Recall@{cutoff:<3} {value:.3f}")
        out.print(f"  MRR@10    {report.mrr_at_10:.3f}")
        return
    out.print("  " + " " * 14 + "".join(f"R@{cutoff:<5}" for cutoff in report.recall) + "MRR@10  skipped")
    for name, (row, skipped) in {"without model": (report, 0), **rows}.items():
        out.print(f"  {name:<14}" + "".join(f"{value:<7.3f}" for value in row.recall.values())
                  + f"{row.mrr_at_10:<8.3f}{skipped}")


#: The rows ``eval retrieval --with-model`` adds: each step alone, then all of them.
MODEL_ROWS = {"rewrite": ("rewrite",), "hyde": ("hyde",), "rerank": ("rerank",), "all three": ("rewrite", "hyde", "rerank")}


async def _model_rows(engine, settings: Settings, labelled, candidates: int) -> dict:
    """Each of :data:`MODEL_ROWS` scored as the baseline is (the same search, as many chunks), with its steps on
    over the configured models: name -> (report, times a step was skipped)."""
    from engine.answer.assisted_retrieval import RetrievalAssist
    from engine.evaluation.retrieval import evaluate
    from engine.service import assist_settings

    rows = {}
    async with engine:
        for name, steps in MODEL_ROWS.items():
            assist = RetrievalAssist(engine.language_models, assist_settings(settings).only(*steps))
            ranked: dict[str, list[str]] = {}
            for query in labelled:
                text = await assist.rewrite(query.question) or query.question
                hits, _ = await assist.retrieve(text, lambda t, n, q=query: engine.asearch(t, k=n, title=q.title), candidates)
                ranked[query.id] = [h.chunk.path for h in hits]
            skipped = sum(n for (_, outcome), n in assist.outcomes.items() if outcome != "used")
            rows[name] = (evaluate(labelled, lambda q, ranked=ranked: ranked[q.id]), skipped)
    return rows
