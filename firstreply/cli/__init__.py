"""The ``firstreply`` command line, one module per command group.

- :mod:`~firstreply.cli.knowledge`: ``ingest``, ``search``, ``ask``, ``eval retrieval``
- :mod:`~firstreply.cli.serve`: ``serve``, ``discord``, ``github-app``
- :mod:`~firstreply.cli.maintainers`: ``maintainer add|list|remove``
- :mod:`~firstreply.cli.review`: ``review list|show|approve|correct|reject``, ``golden export|import``
- :mod:`~firstreply.cli.tuning`: ``tune create|list|status|cancel|grant|evaluate|activate|rollback|export|run``
- :mod:`~firstreply.cli.github`: ``github jobs|retry|drafts|approve|repos|switch``
- :mod:`~firstreply.cli.history`: ``history import github``, ``history list|accept|reject``
- :mod:`~firstreply.cli.secrets`: ``secrets forget``

Every command builds what it needs from validated settings; a bad setting or an engine error ends the command
with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import click

from firstreply.cli import github, history, knowledge, maintainers, review, secrets, serve, tuning


@click.group()
@click.version_option(package_name="firstreply")
def cli() -> None:
    """firstreply: answers your community's questions from your project's own docs."""


for command in (knowledge.ingest, knowledge.search, knowledge.ask, knowledge.eval_group, serve.serve,
                serve.discord_command, serve.github_app_command, secrets.secrets_group, github.github_group, history.history_group,
                maintainers.maintainer_group, review.review_group, review.golden_group, tuning.tune_group):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
