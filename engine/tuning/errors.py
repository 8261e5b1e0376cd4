"""The tuning service's exceptions: one tree, so that a caller maps each kind to its answer once
(the API: 400, 404; the tuning page: an error code; the CLI: a one-line message).

A provider refusing or failing a call is another matter, met only by the runner:
:class:`engine.tuning.providers.TuningProviderError`.
"""

from __future__ import annotations


class TuningError(ValueError):
    """A tuning action that can't be done as asked (a bad request, a setting missing); the message says why."""


class TuningNotFound(TuningError, LookupError):
    """No such tuning job."""


class TuningConflict(TuningError):
    """The job is not in a state that allows it (not succeeded, already over, its model not shared yet)."""


class TooFewExamples(TuningError):
    """Fewer golden records than the provider's tuning needs."""
