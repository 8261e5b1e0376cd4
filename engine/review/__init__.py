"""Review: maintainers judge logged answers, and approved ones become golden records.

:class:`engine.review.service.ReviewService` is the one door to it (the review pages, the ``/api/v1``
routes and the CLI all come through it); :mod:`engine.review.errors` is its exception tree. The queries
themselves are :class:`engine.store.review.ReviewStore`'s.
"""
