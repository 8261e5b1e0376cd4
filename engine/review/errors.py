"""The review's exceptions: one tree, so that a caller maps each kind to its answer once
(the API: 400 and 404; the pages: an error code; the CLI: a one-line message)."""

from __future__ import annotations


class ReviewError(ValueError):
    """A review action that can't be done as asked; the message says why."""


class ReviewNotFound(ReviewError, LookupError):
    """No such answer (or golden record) to act on."""


class ReviewConflict(ReviewError):
    """The thing acted on changed meanwhile (a draft approved by someone else, or posted already)."""
