"""`q2q validate --gates` on a models repository on disk: each way a model fails its gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policies.eval_metrics import ScoredRow, compute_metrics
from policies.eval_report import build_report, sign_report, write_report
from policies.gates import GatesPolicy, MinF1
from reconciler.cli.main import cli
from reconciler.models_tree import load_tree
from registry_state.prompts import find_prompt_file
from support.eval_fixtures import LABELS, write_models_repo

MODEL_ID = "q2q-claude-v3"
DATASET_HASH = "ab" * 32
KEY = "trusted-ci-key"


def rows(*, f1_miss: int = 0, failed_label: str = "risk_min_cues") -> list[ScoredRow]:
    """Forty rows, twenty per language, where every label has positives; the model misses
    `f1_miss` positives of `failed_label` in Spanish."""
    result = []
    for index in range(40):
        language = "en" if index < 20 else "es"
        expected = {label: int((index + position) % 4 == 0)
                    for position, label in enumerate(LABELS)}
        predicted = dict(expected)
        result.append(ScoredRow(language, expected, predicted))
    misses = 0
    for row in result:
        if row.language == "es" and row.expected[failed_label] and misses < f1_miss:
            row.predicted[failed_label] = 0  # type: ignore[index]
            misses += 1
    return result


def gates_yaml(**overrides: Any) -> str:
    policy: dict[str, Any] = {
        "dataset": {"name": "v3_evaluation", "sha256": DATASET_HASH},
        "averaging": "macro",
        "min_support": 2,
        "min_f1": {"default": 0.7, "average": 0.8},
    } | overrides
    return json.dumps(policy, indent=2) + "\n"


def write_report_for(root: Path, *, scored: list[ScoredRow] | None = None,
                     sign: str | None = KEY, rows_failed: int = 0,
                     dataset_hash: str = DATASET_HASH) -> dict[str, Any]:
    tree = load_tree(root)
    spec = tree.spec(MODEL_ID).spec
    prompt = find_prompt_file(root, spec.prompt_version)
    metrics = compute_metrics(scored if scored is not None else rows(), labels=LABELS)
    report = build_report(
        model={"modelId": MODEL_ID},
        hashes={"identity": spec.config_hash(), "prompt": prompt.sha256,
                "dataset": dataset_hash},
        dataset={"name": "v3_evaluation"},
        run={"runId": "run-1", "rowsTotal": 40, "rowsFailed": rows_failed},
        metrics=metrics,
    )
    if sign:
        report = sign_report(report, sign)
    write_report(root / "evals" / f"{MODEL_ID}.json", report)
    return report


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_models_repo(root, model_id=MODEL_ID, active=True)
    (root / "policies").mkdir()
    (root / "policies" / "gates.yaml").write_text(gates_yaml(require_signature=True))
    return root


@pytest.fixture
def validate(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("Q2Q_EVAL_SIGNING_KEY", KEY)

    def invoke(*extra: str) -> Result:
        return CliRunner().invoke(cli, ["validate", "models", "--gates", *extra],
                                  catch_exceptions=False)

    return invoke


def gate_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(("evals/", "models/",
                                                                            "policies/"))]


def test_gates_pass_with_fresh_signed_report(repo: Path, validate: Any) -> None:
    write_report_for(repo)
    result = validate()
    assert result.exit_code == 0, result.output
    assert gate_lines(result) == []


def test_gates_missing_report(validate: Any) -> None:
    result = validate()
    assert result.exit_code == 1
    assert gate_lines(result) == [
        "evals/q2q-claude-v3.json: report: q2q-claude-v3: the model is active but has no "
        "evaluation report; run 'q2q eval run --model q2q-claude-v3 --dataset v3_evaluation' "
        "and commit evals/q2q-claude-v3.json"
    ]


def test_gates_ignore_inactive_model(repo: Path, validate: Any) -> None:
    write_models_repo(repo, model_id=MODEL_ID, active=False)
    assert validate().exit_code == 0


def test_gates_stale_prompt_file(repo: Path, validate: Any) -> None:
    write_report_for(repo)
    prompt = repo / "prompts" / "v3.0.txt"
    prompt.write_text(prompt.read_text() + "Be brief.\n")
    result = validate()
    assert result.exit_code == 1
    [line] = gate_lines(result)
    assert line.startswith("evals/q2q-claude-v3.json: stale.prompt: q2q-claude-v3: report is "
                           "stale: the prompt file changed since it was evaluated (prompt hash ")
    assert line.endswith("run 'q2q eval run --model q2q-claude-v3 --dataset v3_evaluation' "
                         "and commit evals/q2q-claude-v3.json")


def test_gates_stale_identity(repo: Path, validate: Any) -> None:
    write_report_for(repo)
    spec = repo / "models" / f"{MODEL_ID}.yaml"
    spec.write_text(spec.read_text().replace("risk_min_cues: 1", "risk_min_cues: 2"))
    [line] = gate_lines(validate())
    assert "stale.identity: q2q-claude-v3: report is stale: the spec's provider, model, " \
        "prompt version or thresholds changed" in line


def test_gates_stale_dataset(repo: Path, validate: Any) -> None:
    write_report_for(repo, dataset_hash="cd" * 32)
    [line] = gate_lines(validate())
    assert "stale.dataset: q2q-claude-v3: report is stale: the gate dataset changed since " \
        "it was evaluated (dataset hash cdcdcdcdcdcd in the report, abababababab now)" in line


def test_gates_unsigned_report(repo: Path, validate: Any) -> None:
    write_report_for(repo, sign=None)
    assert gate_lines(validate()) == [
        "evals/q2q-claude-v3.json: signature: q2q-claude-v3: report is unsigned but "
        "policies/gates.yaml sets require_signature; have the trusted evaluation job (with "
        "Q2Q_EVAL_SIGNING_KEY set) run 'q2q eval run --model q2q-claude-v3 --dataset "
        "v3_evaluation' and commit evals/q2q-claude-v3.json"
    ]


def test_gates_hand_edited_report(repo: Path, validate: Any) -> None:
    report = write_report_for(repo)
    report["metrics"]["slices"]["all"]["macro"]["f1"] = 0.99
    (repo / "evals" / f"{MODEL_ID}.json").write_text(json.dumps(report))
    [line] = gate_lines(validate())
    assert "signature: q2q-claude-v3: report signature is invalid, so the report was edited " \
        "after it was signed or signed with another key" in line


def test_gates_signature_needs_key(repo: Path, validate: Any,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_report_for(repo)
    monkeypatch.delenv("Q2Q_EVAL_SIGNING_KEY")
    [line] = gate_lines(validate())
    assert "cannot verify the signature because Q2Q_EVAL_SIGNING_KEY is not set" in line


def test_gates_f1_below_minimum(repo: Path, validate: Any) -> None:
    write_report_for(repo, scored=rows(f1_miss=3))
    lines = gate_lines(validate())
    assert lines == [
        "evals/q2q-claude-v3.json: min_f1[risk_min_cues, es]: q2q-claude-v3: F1 0.571 is "
        "below 0.700 (support 5); improve the prompt or thresholds under a new id, then run "
        "'q2q eval run --model q2q-claude-v3 --dataset v3_evaluation' and commit "
        "evals/q2q-claude-v3.json"
    ]


def test_gates_language_override(repo: Path, validate: Any) -> None:
    (repo / "policies" / "gates.yaml").write_text(gates_yaml(
        require_signature=True,
        min_f1={"default": 0.7, "overrides": [
            {"label": "risk_min_cues", "language": "es", "min": 0.5}]}))
    write_report_for(repo, scored=rows(f1_miss=3))
    assert gate_lines(validate()) == []


def test_gates_average_below_minimum(repo: Path, validate: Any) -> None:
    (repo / "policies" / "gates.yaml").write_text(gates_yaml(
        require_signature=True, averaging="micro", min_f1={"default": 0.0, "average": 0.99}))
    write_report_for(repo, scored=rows(f1_miss=3))
    lines = gate_lines(validate())
    assert [line.split(": ")[1] for line in lines] == [
        "min_f1.average[micro, all]", "min_f1.average[micro, es]"]


def test_gates_min_support(repo: Path, validate: Any) -> None:
    (repo / "policies" / "gates.yaml").write_text(gates_yaml(require_signature=True,
                                                             min_support=50))
    write_report_for(repo)
    lines = gate_lines(validate())
    assert len(lines) == len(LABELS)
    expected = ("min_support[confidence_increase]: q2q-claude-v3: the dataset has 10 "
                "positives for confidence_increase, fewer than min_support 50, so the label "
                "is untested")
    assert any(expected in line for line in lines)


def test_gates_failed_rows(repo: Path, validate: Any) -> None:
    write_report_for(repo, rows_failed=4)
    [line] = gate_lines(validate())
    assert "max_failed_rows: q2q-claude-v3: 4 of 40 rows failed at the provider " \
        "(10.0% > 0.0%); see 'q2q eval results run-1'" in line


def test_gates_missing_gates_file(repo: Path, validate: Any) -> None:
    (repo / "policies" / "gates.yaml").unlink()
    [line] = gate_lines(validate())
    assert line.startswith("policies/gates.yaml: missing; --gates needs policies/gates.yaml")


def test_gates_file_error_has_line(repo: Path, validate: Any) -> None:
    (repo / "policies" / "gates.yaml").write_text(
        "dataset:\n  name: v3\n  sha256: abc\nmin_f1:\n  defualt: 0.7\n")
    lines = gate_lines(validate())
    assert lines[0].startswith("policies/gates.yaml:3:11: dataset.sha256: invalid value 'abc'")
    assert lines[1] == ("policies/gates.yaml:5:3: min_f1.defualt: unknown field 'defualt'; "
                        "did you mean 'default'?")


def test_min_f1_precedence() -> None:
    minimum = MinF1(default=0.5, labels={"a": 0.6}, languages={"es": 0.7},
                    overrides=[{"label": "a", "language": "es", "min": 0.9}])  # type: ignore[list-item]
    assert minimum.for_slice("b", "en") == 0.5
    assert minimum.for_slice("a", "en") == 0.6
    assert minimum.for_slice("b", "es") == 0.7
    assert minimum.for_slice("a", "es") == 0.9
    assert GatesPolicy.model_validate(
        {"dataset": {"name": "d", "sha256": DATASET_HASH}}).averaging == "macro"
