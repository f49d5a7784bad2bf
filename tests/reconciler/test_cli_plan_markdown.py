"""`q2q plan --format markdown`: the pull request comment, on SQLite and PostgreSQL.

Real: a git repository of specs, the click commands and the database from the
`database_url` fixture. Nothing is faked.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from support.git_repo import ModelsRepo


@pytest.fixture
def run(models_repo: ModelsRepo, database_url: str) -> Any:
    def invoke(*arguments: str) -> Result:
        command = [*arguments, "--repo", str(models_repo.root), "--db", database_url]
        return CliRunner().invoke(cli, command, catch_exceptions=False)

    return invoke


def test_markdown_lists_cutover_thresholds(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-openai-v1", provider="openai", model="gpt-4o", active=True)
    models_repo.commit("Add two models")
    assert run("apply").exit_code == 0
    models_repo.write_spec("q2q-claude-v1", effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01",
                           model="claude-3-5-sonnet-20250101",
                           thresholds={"risk_min_cues": "2", "belonging_decrease": "0.75"})
    models_repo.write_spec("q2q-openai-v2", provider="openai", model="gpt-4o",
                           prompt_version="v3.0", active=True,
                           effective_from='"2099-02-01T09:30:00Z"')
    revision = models_repo.commit("Activate claude v2, schedule openai v2")

    result = run("plan", "--format", "markdown")

    assert result.exit_code == 2
    assert result.stdout == (
        f"### q2q plan for `{models_repo.root}@main` at `{revision[:12]}`\n"
        "\n"
        "**5 changes**: 1 deactivate, 2 create, 1 update, 1 activate\n"
        "\n"
        "| | change | model | provider | details |\n"
        "|---|---|---|---|---|\n"
        "| + | create | `q2q-claude-v2` | claude |  |\n"
        "| + | create | `q2q-openai-v2` | openai |  |\n"
        "| > | activate | `q2q-claude-v2` | claude |  |\n"
        "| < | deactivate | `q2q-claude-v1` | claude | (spec set to inactive) |\n"
        "| ~ | update | `q2q-claude-v1` | claude | declared_active True -> False |\n"
        "\n"
        "#### Cutovers\n"
        "\n"
        "- **claude**: `q2q-claude-v1` → `q2q-claude-v2` now\n"
        "\n"
        "  | field | before | after |\n"
        "  |---|---|---|\n"
        "  | model | claude-3-5-sonnet-20241022 | claude-3-5-sonnet-20250101 |\n"
        "  | thresholds.belonging_decrease | 0.8 | 0.75 |\n"
        "  | thresholds.risk_min_cues | 1 | 2 |\n"
        "\n"
        "- **openai**: `q2q-openai-v1` → `q2q-openai-v2` at 2099-02-01T09:30:00Z\n"
        "\n"
        "  | field | before | after |\n"
        "  |---|---|---|\n"
        "  | prompt_version | v2.0 | v3.0 |\n"
        "\n"
        "Next scheduled cutover: 2099-02-01T09:30:00Z\n"
    )


def test_markdown_no_changes(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    revision = models_repo.commit("Add a model")
    run("apply")

    result = run("plan", "--format", "markdown")

    assert result.exit_code == 0
    assert result.stdout == (
        f"### q2q plan for `{models_repo.root}@main` at `{revision[:12]}`\n\n"
        "**No changes**: the database already matches this revision.\n"
    )


def test_markdown_lists_warnings(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True, effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2", active=True, effective_from="2025-06-01")
    models_repo.commit("Two active claude specs")

    result = run("plan", "--format", "markdown")

    assert result.exit_code == 2
    assert result.stdout.endswith(
        "#### Warnings\n\n"
        "- `models/q2q-claude-v1.yaml:1`: active: 'q2q-claude-v1' is superseded by "
        "'q2q-claude-v2', which took effect later (2025-06-01T00:00:00+00:00); set "
        "'active: false' here to say so\n"
    )


def test_markdown_invalid_specs(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write("models/q2q-claude-v1.yaml", "id: q2q-claude-v1\nprovider: [\n")
    models_repo.commit("Break a spec")

    result = run("plan", "--format", "markdown")

    assert result.exit_code == 1
    assert result.stdout.startswith(
        f"### q2q plan for `{models_repo.root}@main`: invalid\n\n"
        "**1 error**; nothing would be applied. Run `q2q validate` to see them locally.\n\n"
        "- `models/q2q-claude-v1.yaml:3"
    )


GATES = "dataset:\n  name: v3_evaluation\n  sha256: " + "ab" * 32 + "\n"


def test_markdown_reports_gate_failures(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.write("prompts/v2.0.txt", "Classify {{ text }} in {{ language }}.\n")
    models_repo.write("policies/gates.yaml", GATES)
    models_repo.commit("Add an active model without an evaluation report")

    result = run("plan", "--format", "markdown")

    assert result.exit_code == 2, result.output
    assert "#### Evaluation gates" in result.stdout
    assert "**1 gate failure**" in result.stdout
    assert "q2q-claude-v1: the model is active but has no evaluation report" in result.stdout


def test_markdown_without_gates_file(models_repo: ModelsRepo, run: Any) -> None:
    models_repo.write_spec("q2q-claude-v1", active=True)
    models_repo.commit("Add a model")

    result = run("plan", "--format", "markdown")

    assert "Evaluation gates" not in result.stdout
