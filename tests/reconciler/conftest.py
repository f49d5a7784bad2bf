"""Fixtures for reconciler tests: a real git repository of specs in a temporary directory.

Real: git (through GitPython), the YAML files, the database (SQLite and
PostgreSQL through the `engine` fixture). Fake: only the clock, injected into
the reconciler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.git_source import GitSource
from reconciler.reconcile import ReconcileOptions, Reconciler
from support.git_repo import Clock, ModelsRepo


@pytest.fixture
def models_repo(tmp_path: Path) -> ModelsRepo:
    return ModelsRepo(tmp_path / "models-repo")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_reconciler(
    engine: Any, models_repo: ModelsRepo, clock: Clock, tmp_path: Path
) -> Iterator[Any]:
    """Return a factory of reconcilers on the test repository and database."""
    sources: list[GitSource] = []

    def factory(**options: Any) -> Reconciler:
        source = GitSource(str(models_repo.root), cache_dir=tmp_path / "cache")
        sources.append(source)
        return Reconciler(
            engine, source, options=ReconcileOptions(instance="test", **options), clock=clock
        )

    yield factory
    for source in sources:
        source.close()
