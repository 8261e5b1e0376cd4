"""The dependency rule, checked: import-linter's contracts in pyproject.toml (issue 19).

firstreply (the composition root) -> the frontends (bot, github_app; independent of each other) -> the
engine's public surface -> the engine's internals. The second test breaks the rule in a copy of the tree,
so a contract that stopped checking anything would fail it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firstreply", "bot", "github_app", "engine")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the tree at ``root`` (its pyproject.toml, its packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_tree_keeps_the_dependency_rule():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


#: The engine's public surface (DESIGN.md, engine/__init__.py): what a frontend may import.
PUBLIC = {"__init__", "protocol", "client", "config", "logs", "metrics", "database", "web", "markdown"}


def test_every_engine_module_is_public_or_closed_to_the_frontends():
    # The contract lists what is closed; a new part of the engine left off that list would be open to the frontends.
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    closed = next(c for c in contracts if c["id"] == "frontends-use-the-public-surface")["forbidden_modules"]
    parts = {p.stem for p in (ROOT / "engine").iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    unplaced = {part for part in parts if part not in PUBLIC and f"engine.{part}" not in closed}
    assert not unplaced, f"engine modules neither public nor closed to the frontends: {sorted(unplaced)}"
    assert not PUBLIC & {name.removeprefix("engine.") for name in closed}


def test_the_contracts_refuse_an_import_against_the_rule(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static",
                                                                                           "templates", "*.html"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "engine" / "api" / "reaches_up.py").write_text('"""Against the rule."""\nimport bot.run\n')
    (tmp_path / "bot" / "reaches_in.py").write_text('"""Against the rule."""\nfrom engine.store import models\n')
    (tmp_path / "github_app" / "knows_the_bot.py").write_text('"""Against the rule."""\nimport bot.messages\n')
    result = lint_imports(tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "Contracts: 0 kept, 3 broken." in report
    assert "engine.api.reaches_up -> bot.run" in report  # the engine imports a frontend
    assert "bot.reaches_in -> engine.store" in report  # a frontend imports an engine internal
    assert "github_app.knows_the_bot -> bot.messages" in report  # the frontends are independent
