"""`q2q eval upload`, `run`, `results` and `datasets` through the real CLI entry point.

Real: the CLI, the database (SQLite and PostgreSQL), the provider SDKs. Fake:
the provider, a local HTTP server that the SDKs reach through their standard
base-URL environment variables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policies.eval_report import signature_is_valid
from reconciler.cli.main import cli
from support.eval_fixtures import (
    COUNT_LABELS,
    PROBABILITY_LABELS,
    ROWS,
    dataset_csv,
    write_models_repo,
)
from support.fake_providers import FakeProvider, Reply, anthropic_message, keyword_provider
from support.provider_tests import DUMMY_KEYS


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    fake = FakeProvider(keyword_provider(probability=PROBABILITY_LABELS, count=COUNT_LABELS))
    with fake.running():
        for name, value in DUMMY_KEYS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        monkeypatch.delenv("Q2Q_EVAL_SIGNING_KEY", raising=False)
        yield fake


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    root = tmp_path / "models-repo"
    write_models_repo(root)
    (root / "data.csv").write_text(dataset_csv(ROWS))
    return root


@pytest.fixture
def q2q(database_url: str, repo_root: Path) -> Any:
    runner = CliRunner()

    def invoke(*arguments: str) -> Result:
        command = [*arguments, "--db", database_url]
        if arguments[:2] in (("eval", "run"), ("eval", "upload")):
            command += ["--repo", str(repo_root)]
        return runner.invoke(cli, command, catch_exceptions=False)

    return invoke


def upload(q2q: Any, repo_root: Path) -> dict[str, Any]:
    result = q2q("eval", "upload", str(repo_root / "data.csv"), "--name", "v3_evaluation",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_upload_prints_dataset(q2q: Any, repo_root: Path) -> None:
    result = q2q("eval", "upload", str(repo_root / "data.csv"), "--name", "v3_evaluation")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Stored dataset v3_evaluation (")
    assert "10 rows, languages en, es" in result.output
    again = q2q("eval", "upload", str(repo_root / "data.csv"), "--name", "v3_evaluation")
    assert again.output.startswith("Already stored dataset v3_evaluation (")


def test_upload_bad_row_stores_nothing(q2q: Any, repo_root: Path) -> None:
    lines = dataset_csv(ROWS).splitlines()
    lines[3] = lines[3].replace(",en,", ",en,", 1).rsplit(",", 1)[0] + ",yes"
    (repo_root / "bad.csv").write_text("\n".join(lines) + "\n")
    result = q2q("eval", "upload", str(repo_root / "bad.csv"), "--name", "broken")
    assert result.exit_code == 1
    assert "bad.csv: line 4: risk_min_cues: invalid value 'yes'; allowed values: 0, 1" \
        in result.output
    assert "Nothing was stored" in result.output
    listing = q2q("eval", "datasets", "--format", "json")
    assert json.loads(listing.output)["datasets"] == []


def test_upload_size_limit(q2q: Any, repo_root: Path) -> None:
    result = q2q("eval", "upload", str(repo_root / "data.csv"), "--name", "big",
                 "--max-bytes", "100")
    assert result.exit_code == 1
    assert "more than the limit of 100" in result.output


def test_run_writes_report_and_metrics(q2q: Any, repo_root: Path,
                                       server: FakeProvider) -> None:
    upload(q2q, repo_root)
    result = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation")
    assert result.exit_code == 0, result.output
    assert "10 rows, 0 failed, 10 provider calls, 0 cache hits" in result.output
    assert len(server.requests) == 10

    report = json.loads((repo_root / "evals" / "q2q-claude-v3.json").read_text())
    assert report["model"]["modelId"] == "q2q-claude-v3"
    assert set(report["hashes"]) == {"identity", "prompt", "dataset"}
    assert "signature" not in report
    overall = report["metrics"]["slices"]["all"]["labels"]["confidence_increase"]
    # Four rows carry the marker, three of them truly positive.
    assert overall["precision"] == pytest.approx(0.75)
    assert overall["recall"] == pytest.approx(1.0)
    assert overall["support"] == 3
    assert report["metrics"]["slices"]["en"]["labels"]["language_comfort_high"]["f1"] is None


def test_rerun_makes_no_provider_call(q2q: Any, repo_root: Path, server: FakeProvider) -> None:
    upload(q2q, repo_root)
    first = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation",
                "--format", "json")
    second = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation",
                 "--format", "json")
    assert len(server.requests) == 10
    rerun = json.loads(second.output)
    assert rerun["providerCalls"] == 0
    assert rerun["cacheHits"] == 10
    assert rerun["metrics"] == json.loads(first.output)["metrics"]

    uncached = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation",
                   "--no-cache", "--format", "json")
    assert json.loads(uncached.output)["providerCalls"] == 10
    assert len(server.requests) == 20


def test_prompt_change_misses_cache(q2q: Any, repo_root: Path, server: FakeProvider) -> None:
    upload(q2q, repo_root)
    q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation")
    prompt = repo_root / "prompts" / "v3.0.txt"
    prompt.write_text("Be careful.\n" + prompt.read_text())
    result = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation",
                 "--format", "json")
    assert json.loads(result.output)["providerCalls"] == 10


def test_row_errors_are_not_cached(q2q: Any, repo_root: Path, server: FakeProvider) -> None:
    upload(q2q, repo_root)
    server.script(Reply(anthropic_message("", stop_reason="refusal")))
    first = json.loads(q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset",
                           "v3_evaluation", "--format", "json").output)
    assert first["rowsFailed"] == 1
    assert first["metrics"]["slices"]["all"]["rows"] == 9
    second = json.loads(q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset",
                            "v3_evaluation", "--format", "json").output)
    assert second["providerCalls"] == 1
    assert second["rowsFailed"] == 0


def test_run_signs_report(q2q: Any, repo_root: Path, server: FakeProvider,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Q2Q_EVAL_SIGNING_KEY", "ci-secret")
    upload(q2q, repo_root)
    result = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation")
    assert "(signed)" in result.output
    report = json.loads((repo_root / "evals" / "q2q-claude-v3.json").read_text())
    assert signature_is_valid(report, "ci-secret")
    assert not signature_is_valid(report, "another-key")


@pytest.mark.parametrize(
    ("provider", "model"),
    [pytest.param("openai", "gpt-test", id="openai"),
     pytest.param("gemini", "gemini-test", id="gemini")],
)
def test_run_other_providers(q2q: Any, repo_root: Path, server: FakeProvider,
                             provider: str, model: str) -> None:
    write_models_repo(repo_root, provider=provider, model=model, model_id="q2q-other-v1")
    upload(q2q, repo_root)
    result = q2q("eval", "run", "--model", "q2q-other-v1", "--dataset", "v3_evaluation",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["providerCalls"] == 10
    assert document["metrics"]["slices"]["all"]["labels"]["confidence_increase"]["support"] == 3


def test_run_without_key_names_variable(q2q: Any, repo_root: Path, server: FakeProvider,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    upload(q2q, repo_root)
    result = q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset", "v3_evaluation")
    assert result.exit_code == 1
    assert "ANTHROPIC_API_KEY is not set" in result.output
    assert server.requests == []


def test_results_shows_run(q2q: Any, repo_root: Path, server: FakeProvider) -> None:
    upload(q2q, repo_root)
    run = json.loads(q2q("eval", "run", "--model", "q2q-claude-v3", "--dataset",
                         "v3_evaluation", "--format", "json").output)
    shown = q2q("eval", "results", run["runId"], "--format", "json")
    document = json.loads(shown.output)["run"]
    assert document["status"] == "completed"
    assert document["metrics"] == run["metrics"]
    rows = {(r["language"], r["label"]) for r in document["results"]}
    assert ("all", "macro") in rows
    assert ("es", "confidence_increase") in rows
    text = q2q("eval", "results", run["runId"])
    assert f"Run {run['runId']} (completed): q2q-claude-v3" in text.output


def test_results_unknown_run(q2q: Any) -> None:
    result = q2q("eval", "results", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code == 1
    assert "evaluation run 00000000-0000-0000-0000-000000000000 not found" in result.output
