"""`q2q predictions import` and `q2q drift check|checks|alerts|report` through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from registry_state import database
from registry_state.tables_drift import predictions
from support.git_repo import ModelsRepo

POLICY = """\
policies:
  - id: guide
    labels: [confidence_increase]
    languages: [en]
    baseline:
      distribution: {positive: 0.30, negative: 0.70}
    min_sample_size: 10
"""


def prediction(index: int, *, positive: bool, **fields: Any) -> dict[str, Any]:
    return {"model_id": "q2q-claude-v2-multilingual", "provider": "claude", "language": "en",
            "label": "confidence_increase", "score": 0.9 if positive else 0.1,
            "positive": positive, "created_at": "2026-01-09T10:00:00Z",
            "request_id": f"req-{index}"} | fields


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def run(database_url: str) -> Any:
    runner = CliRunner()

    def invoke(*arguments: str) -> Result:
        return runner.invoke(cli, [*arguments, "--db", database_url], catch_exceptions=False)

    return invoke


def stored_rows(database_url: str) -> int:
    engine = database.connect(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(
                sa.select(sa.func.count()).select_from(predictions)).scalar_one())
    finally:
        engine.dispose()


def test_import_jsonl_idempotent(run: Any, database_url: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [prediction(i, positive=i < 5) for i in range(20)])

    first = run("predictions", "import", str(path))
    second = run("predictions", "import", str(path), "--output", "json")

    assert first.exit_code == 0, first.output
    assert first.output == f"Imported 20 predictions from {path} (0 already stored, skipped).\n"
    assert json.loads(second.output) == {"file": str(path), "received": 20, "inserted": 0,
                                         "duplicates": 20}
    assert stored_rows(database_url) == 20


def test_import_csv(run: Any, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "model_id,provider,language,label,score,positive,created_at,request_id\n"
        "m1,claude,en,confidence_increase,0.8,true,2026-01-09T10:00:00Z,a\n"
        "m1,claude,en,confidence_increase,,false,2026-01-09T10:00:00+02:00,b\n"
    )

    result = run("predictions", "import", str(path))

    assert result.exit_code == 0, result.output
    assert stored_rows(database_url) == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param({"score": 1.5}, "line 3: score: score 1.5 is outside [0, 1]", id="score"),
        pytest.param({"created_at": "2026-01-09T10:00:00"},
                     "line 3: created_at: '2026-01-09T10:00:00' has no UTC offset", id="naive"),
        pytest.param({"provider": "acme"}, "line 3: provider: invalid value 'acme'; allowed "
                     "values: claude, openai, gemini", id="provider"),
        pytest.param({"positive": "maybe"}, "line 3: positive: expected true or false, got "
                     "'maybe'", id="positive"),
        pytest.param({"colour": "red"}, "line 3: colour: unknown field", id="unknown"),
    ],
)
def test_import_bad_row_imports_nothing(run: Any, database_url: str, tmp_path: Path,
                                        bad: dict[str, Any], message: str) -> None:
    rows = [prediction(0, positive=True), prediction(1, positive=False),
            prediction(2, positive=True) | bad]
    path = write_jsonl(tmp_path / "p.jsonl", rows)

    result = run("predictions", "import", str(path))

    assert result.exit_code == 1
    assert f"error: {path}: {message}" in result.output
    assert "nothing was imported" in result.output
    assert stored_rows(database_url) == 0


def test_import_missing_field(run: Any, tmp_path: Path) -> None:
    row = prediction(0, positive=True)
    del row["request_id"]
    path = write_jsonl(tmp_path / "p.jsonl", [row])

    result = run("predictions", "import", str(path))

    assert "line 1: request_id: missing required field" in result.output


def test_import_invalid_json(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(prediction(0, positive=True)) + "\n{not json\n")

    result = run("predictions", "import", str(path))

    assert result.exit_code == 1
    assert "line 2: invalid JSON" in result.output


def test_import_progress_bar(run: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [prediction(i, positive=True) for i in range(3)])

    result = run("predictions", "import", str(path), "--progress")

    assert f"Importing {path.name}" in result.output


def test_drift_commands(run: Any, models_repo: ModelsRepo, tmp_path: Path) -> None:
    models_repo.write_spec("q2q-claude-v1", effective_from="2025-01-15")
    models_repo.write_spec("q2q-claude-v2-multilingual", active=True)
    models_repo.write("policies/drift.yaml", POLICY)
    models_repo.commit("Add models and a drift policy")
    assert run("apply", "--repo", str(models_repo.root)).exit_code == 0
    # 20 rows, 2 positive: PSI 0.270 against 0.30 / 0.70, an alert.
    # The CLI runs on the real clock, so the rows are an hour old.
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    rows = [prediction(i, positive=i < 2, created_at=an_hour_ago) for i in range(20)]
    assert run("predictions", "import", str(write_jsonl(tmp_path / "p.jsonl", rows))) \
        .exit_code == 0

    checked = run("drift", "check", "--repo", str(models_repo.root), "--policy", "guide")
    listed = run("drift", "checks", "--format", "json")
    alerts = run("drift", "alerts", "--format", "json")
    text = run("drift", "alerts")
    report = run("drift", "report", "--html", str(tmp_path / "report.html"))

    assert checked.exit_code == 3, checked.output
    assert "Policy guide at " in checked.output
    assert "confidence_increase" in checked.output
    assert "alert" in checked.output
    assert json.loads(listed.output)["count"] == 1
    body = json.loads(alerts.output)
    assert body["success"] is True
    assert body["alerts"][0]["psiScore"] == pytest.approx(0.269985, abs=5e-7)
    assert "q2q-claude-v2-multilingual" in text.output
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "q2q-claude-v2-multilingual / confidence_increase / en" in page
    assert 'fill="#d00"' in page
    assert "<script" not in page


def test_drift_check_unknown_policy(run: Any, models_repo: ModelsRepo) -> None:
    models_repo.write_spec("q2q-claude-v2-multilingual", active=True)
    models_repo.write("policies/drift.yaml", POLICY)
    models_repo.commit("Add a model and a drift policy")
    run("apply", "--repo", str(models_repo.root))

    result = run("drift", "check", "--repo", str(models_repo.root), "--policy", "daily")

    assert result.exit_code == 1
    assert result.output == ("error: policies/drift.yaml: no drift policy with id 'daily' "
                             "(policies: guide); check --policy\n")
