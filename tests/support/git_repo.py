"""A real git repository of spec files for tests, and a settable clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import git

DEFAULT_THRESHOLDS: dict[str, Any] = {
    "confidence_increase": "0.80",
    "confidence_decrease": "0.80",
    "belonging_increase": "0.80",
    "belonging_decrease": "0.80",
    "language_comfort_high": "0.90",
    "language_comfort_low": "0.20",
    "employability_min_signals": "1",
    "risk_min_cues": "1",
}

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def spec_yaml(
    model_id: str,
    *,
    provider: str = "claude",
    model: str = "claude-3-5-sonnet-20241022",
    prompt_version: str = "v2.0",
    active: bool = False,
    effective_from: str = '"2025-06-01T00:00:00Z"',
    description: str | None = None,
    thresholds: dict[str, Any] | None = None,
) -> str:
    """Render one spec file; threshold values are written verbatim."""
    values = DEFAULT_THRESHOLDS | (thresholds or {})
    lines = [
        f"id: {model_id}",
        f"provider: {provider}",
        f"model: {model}",
        f"prompt_version: {prompt_version}",
        "thresholds:",
        *(f"  {name}: {value}" for name, value in values.items()),
        f"effective_from: {effective_from}",
        f"active: {'true' if active else 'false'}",
    ]
    if description is not None:
        lines.append(f'description: "{description}"')
    return "\n".join(lines) + "\n"


class ModelsRepo:
    """A git repository with a models/ directory, edited and committed by tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = git.Repo.init(root, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "Ada Author")
            config.set_value("user", "email", "ada@example.org")
        (root / "models").mkdir()

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def write_spec(self, model_id: str, **fields: Any) -> None:
        self.write(f"models/{model_id}.yaml", spec_yaml(model_id, **fields))

    def remove(self, relative: str) -> None:
        self.repo.index.remove([relative], working_tree=True)

    def commit(self, subject: str) -> str:
        self.repo.git.add("--all")
        self.repo.git.commit("--allow-empty", "-m", subject)
        return self.repo.head.commit.hexsha

    def revert_head(self) -> str:
        self.repo.git.revert("--no-edit", "HEAD")
        return self.repo.head.commit.hexsha


class Clock:
    """A settable clock for the reconciler."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now
