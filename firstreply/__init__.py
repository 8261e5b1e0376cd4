"""firstreply's composition root: the command line (:mod:`firstreply.cli`) and the wiring that runs the engine's
API with the GitHub App and the Discord bot in one process (:mod:`firstreply.serve`).

Only this package knows every part; the frontends (``bot``, ``github_app``) know the engine's public surface,
and the engine knows neither (see the import contracts in ``pyproject.toml``).
"""
