"""The GitHub Discussions App: it gives new questions in a repository's Discussions a first reply (or a draft a
maintainer approves), answers follow-ups that mention it, and records the answers their authors accept.

Its settings, resolved once (credentials checked, the key parsed), in ``config.py``; pure protocol decisions in
``sansio.py``; GitHub's REST and GraphQL through gidgethub in ``api.py``, the GraphQL documents in ``graphql.py``;
what each queued job does in ``handlers.py``; the durable queue's workers in ``worker.py``; the App in one object
in ``app.py``; its HTTP routes in ``routes.py``; running alone in ``run.py``. It owns its state: its tables in
``models.py`` and the queue, replies and installations in ``store.py`` (on the engine's database, through
``engine.database``), its ``firstreply_github_*`` series in ``metrics.py``, and its part of the review pages in
``review.py``. It depends only on the engine's public surface: ``engine``, ``engine.protocol``, ``engine.client``,
``engine.config`` (its part of the settings: ``GitHubSettings``), ``engine.logs``, ``engine.metrics``,
``engine.database`` and ``engine.web``.
"""
