"""``firstreply review`` and ``firstreply golden``: review logged answers, and the golden records they become."""

from __future__ import annotations

from pathlib import Path

import click

from firstreply.cli.context import _with_engine


@click.group(name="review")
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
    rows, more = _with_engine(lambda engine: engine.review_service.answers(chosen))
    for r in rows:
        click.echo(f"{r.id}  {r.verdict:<10} {r.channel:<8} +{r.up_votes}/-{r.down_votes}  {r.question[:80]}")
    if more:
        click.echo(f"(more: --page {page + 1})")


@review_group.command(name="show")
@click.argument("answer_id")
def review_show(answer_id: str) -> None:
    """One answer: question, answer, sources, verdict."""
    detail = _with_engine(lambda engine: engine.review_service.detail(answer_id), missing=f"no answer {answer_id}")
    r = detail["record"]
    click.echo(f"{r.channel} · {r.model} · {r.verdict} · +{r.up_votes}/-{r.down_votes} · {r.created_at:%Y-%m-%d %H:%M}")
    click.echo(f"Q: {r.question}\n\nA: {r.text}")
    if r.corrected_text:
        click.echo(f"\nCorrected ({r.reviewed_by}): {r.corrected_text}")
    for source in r.sources:
        click.echo(f"  - {source.get('path')} {source.get('score', 0):.3f}")


def _review(answer_id: str, verdict: str, by: str, text: str | None = None, reason: str | None = None) -> None:
    _record, golden = _with_engine(lambda engine: engine.review_service.review(answer_id, verdict, by, text=text, reason=reason),
                                   unknown=f"no answer {answer_id}")
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


@click.group(name="golden")
def golden_group() -> None:
    """Golden records: export them, or import question/answer pairs from CSV."""


@golden_group.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
def golden_export(fmt: str) -> None:
    """Print every golden record as JSONL or CSV."""

    click.echo(_with_engine(lambda engine: engine.review_service.export_golden(fmt)), nl=False)


@golden_group.command(name="import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", required=True)
def golden_import(csv_file: Path, by: str) -> None:
    """Add the question/answer pairs of a CSV file (with a header row) and index them."""

    text = csv_file.read_text(encoding="utf-8-sig")
    result = _with_engine(lambda engine: engine.review_service.import_golden_csv(text, by))
    click.echo(f"{result['added']} added, {len(result['skipped'])} skipped")
    for skipped in result["skipped"]:
        click.echo(f"  line {skipped['line']}: {skipped['reason']}")
