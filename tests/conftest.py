"""Shared fixtures: the real embedding model (loaded once), the sample project, fresh settings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.config import Settings

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def embedder():
    from engine.index.embedder import Embedder

    model = Embedder()
    model.encode(["warm up"])
    return model


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A writable copy of tests/data/sample_project, so tests may change it."""
    target = tmp_path / "project"
    shutil.copytree(DATA / "sample_project", target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", kb="test", _env_file=None)


def words(text: str) -> int:
    """A token counter for pure chunking tests: one token per whitespace-separated word."""
    return len(text.split())
