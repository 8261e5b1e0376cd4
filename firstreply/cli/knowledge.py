"""The knowledge commands: ``ingest``, ``search``, ``ask`` and ``eval``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.config import Settings
from firstreply.cli.console import _failures_as_messages, _progress, err, out
from firstreply.cli.context import _engine, _settings


@click.command()
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

    from firstreply.local_server import running_server

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
