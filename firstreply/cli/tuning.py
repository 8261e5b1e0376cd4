"""``firstreply tune``: train a model on the golden records, evaluate it, activate it (or roll back)."""

from __future__ import annotations

import json

import click

from engine.logs import configure as configure_logging
from firstreply.cli.console import _failures_as_messages, err
from firstreply.cli.context import _engine, _settings, _with_engine


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


@click.group(name="tune")
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
    job = _with_engine(lambda engine: engine.tuning_service.create(alias, base, list(records) or None, {}, by))
    click.echo(_job_line(job))


@tune_group.command(name="list")
def tune_list() -> None:
    """Every tuning job, newest first."""
    for job in _with_engine(lambda engine: engine.tuning_service.jobs()):
        click.echo(_job_line(job))


@tune_group.command(name="status")
@click.argument("job_id")
def tune_status(job_id: str) -> None:
    """One job in full, with its evaluation when there is one."""
    job = _with_engine(lambda engine: engine.tuning_service.job(job_id), missing=f"no tuning job {job_id}")
    click.echo(_job_line(job))
    if job.evaluation:
        click.echo(json.dumps(job.evaluation, indent=2))


@tune_group.command(name="cancel")
@click.argument("job_id")
def tune_cancel(job_id: str) -> None:
    """Stop a job (a queued one at once; a running one at the runner's next look)."""
    from engine.tuning.errors import TuningConflict, TuningNotFound

    async def cancel(engine):
        try:
            return await engine.tuning_service.cancel(job_id)
        except (TuningNotFound, TuningConflict):
            raise click.ClickException(f"no unfinished tuning job {job_id}") from None

    click.echo(_job_line(_with_engine(cancel)))


@tune_group.command(name="grant")
@click.argument("job_id")
def tune_grant(job_id: str) -> None:
    """Try again to share a job's tuned Gemini model with FIRSTREPLY_TUNED_MODEL_GRANTEE (after the grant failed)."""
    job = _with_engine(lambda engine: engine.tuning_service.retry_grant(job_id), unknown=f"no tuning job {job_id}",
                       missing=f"no failed grant to retry on job {job_id}")
    click.echo(_job_line(job))


@tune_group.command(name="evaluate")
@click.argument("job_id")
def tune_evaluate(job_id: str) -> None:
    """Compare the tuned model with the current one on the job's held-out questions."""
    evaluation = _with_engine(lambda engine: engine.tuning_service.evaluate(job_id), unknown=f"no tuning job {job_id}")
    click.echo(json.dumps(evaluation, indent=2))


@tune_group.command(name="activate")
@click.argument("job_id")
@click.option("--by", required=True)
@click.option("--no-fallback", is_flag=True, help="Don't keep the base model as the first fallback.")
def tune_activate(job_id: str, by: str, no_fallback: bool) -> None:
    """Make a succeeded job's model the engine's (evaluated first, if it wasn't)."""
    activation = _with_engine(lambda engine: engine.tuning_service.activate(job_id, by, fallback=not no_fallback),
                              unknown=f"no tuning job {job_id}")
    click.echo(f"{activation.model} is now the engine's model" + (f" (fallback {activation.fallback})" if activation.fallback else ""))


@tune_group.command(name="rollback")
@click.option("--by", required=True)
def tune_rollback(by: str) -> None:
    """Undo the last activation."""
    ended = _with_engine(lambda engine: engine.tuning_service.rollback(by), missing="no activation is in force")
    click.echo(f"{ended.model} is no longer the engine's model")


@tune_group.command(name="export")
@click.option("--provider", type=TunableProvider(), required=True)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--variant", type=click.Choice(["rag", "plain"]), help="Default: FIRSTREPLY_TUNING_VARIANT.")
def tune_export(provider: str, fmt: str, variant: str | None) -> None:
    """Print the training set in the provider's format; what validation dropped goes to stderr."""
    body, dropped = _with_engine(lambda engine: engine.tuning_service.training_set(provider, fmt, variant))
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
            await engine.tuning_service.runner(session).run_forever()

    with _failures_as_messages():
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass
