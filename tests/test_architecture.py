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
