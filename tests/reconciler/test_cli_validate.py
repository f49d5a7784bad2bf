"""Tests of `q2q validate`: exit status and the exact lines people and CI read.

Most cases run the click command in-process through CliRunner; two run the
installed `q2q` script as a real subprocess. Every case works in a temporary
directory, so displayed paths are relative (models/...).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from registry_state import yaml_source

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples" / "models"
GUIDE_MODELS_FILE = REPO_ROOT / "tests" / "data" / "governance_guide_models.yaml"
SUBPROCESS_TIMEOUT_SECONDS = 60

SPEC = """\
id: {id}
provider: {provider}
model: claude-3-5-sonnet-20241022
prompt_version: v2.0
thresholds:
  confidence_increase: 0.80
  confidence_decrease: 0.80
  belonging_increase: 0.80
  belonging_decrease: 0.80
  language_comfort_high: 0.90
  language_comfort_low: 0.20
  employability_min_signals: 1
  risk_min_cues: 1
effective_from: "{effective_from}"
active: {active}
"""

CUSTOM_SPEC = """\
id: q2q-toxicity-v1
provider: gemini
model: gemini-1.5-pro
prompt_version: v1.0
thresholds:
  toxicity: 0.7
  flag_count: 2
effective_from: "2025-06-01T00:00:00Z"
active: true
"""

CUSTOM_SETTINGS = """\
taxonomy:
  thresholds:
    toxicity: probability
    flag_count: count
"""

BAD_PROVIDER_LINE = (
    "models/bad-provider.yaml:2:11: provider: invalid value 'mistral'; "
    "allowed values: 'claude', 'openai' or 'gemini'"
)


def spec_text(
    model_id: str,
    *,
    provider: str = "claude",
    effective_from: str = "2025-06-01T00:00:00Z",
    active: str = "true",
) -> str:
    return SPEC.format(id=model_id, provider=provider, effective_from=effective_from, active=active)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return an empty working directory with a models/ folder, made the current one."""
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    # The CLI writes the traceback of an unexpected error under XDG_CACHE_HOME.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def validate(*arguments: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *arguments])


def stdout_lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def write_bad_files(models: Path) -> None:
    write(models / "bad-provider.yaml", spec_text("q2q-mistral-v1", provider="mistral"))
    write(
        models / "typo.yaml", spec_text("q2q-claude-v2").replace("prompt_version", "promt_version")
    )


# --- valid directories -------------------------------------------------------------------------


def test_examples_valid(workdir: Path) -> None:
    shutil.copytree(EXAMPLES_DIR, workdir / "examples" / "models")

    result = validate("examples/models")

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("examples/models: valid: ")


def test_guide_models_file_valid(workdir: Path) -> None:
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate("models")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == "models: valid: 1 file, 1 spec, 0 errors, 0 warnings\n"


def test_default_directory_models(workdir: Path) -> None:
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate()

    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("models: valid: 1 file,")


def test_yml_and_nested_files_counted(workdir: Path) -> None:
    write(workdir / "models" / "a.yml", spec_text("a", active="false"))
    write(workdir / "models" / "claude" / "b.yaml", spec_text("b", active="false"))
    write(workdir / "models" / "README.md", "not a spec\n")

    result = validate("models")

    assert result.exit_code == 0, result.output
    assert result.stderr == "models: valid: 2 files, 2 specs, 0 errors, 0 warnings\n"


def test_missing_directory_usage_error(workdir: Path) -> None:
    result = validate("no-such-dir")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# --- invalid files: text output ----------------------------------------------------------------


def test_bad_files_exit_one(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("models")

    assert result.exit_code == 1


def test_bad_files_exact_lines(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("models")

    assert stdout_lines(result) == [
        BAD_PROVIDER_LINE,
        "models/typo.yaml:1:1: prompt_version: missing required field 'prompt_version'",
        "models/typo.yaml:4:1: promt_version: unknown field 'promt_version'; "
        "did you mean 'prompt_version'?",
    ]


def test_bad_files_summary(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("models")

    assert result.stderr == "models: invalid: 2 files, 0 specs, 3 errors, 0 warnings\n"


def test_models_list_error_line(workdir: Path) -> None:
    text = GUIDE_MODELS_FILE.read_text().replace("risk_min_cues: 1", "risk_min_cues: -1")
    write(workdir / "models" / "models.yaml", text)

    result = validate("models")

    assert result.exit_code == 1
    assert stdout_lines(result) == [
        "models/models.yaml:14:22: models[0].thresholds.risk_min_cues: "
        "input should be greater than or equal to 0, got -1"
    ]


def test_empty_file_line(workdir: Path) -> None:
    write(workdir / "models" / "empty.yaml", "")

    result = validate("models")

    assert result.exit_code == 1
    assert stdout_lines(result) == [
        "models/empty.yaml:1:1: the file is empty; a spec file holds one spec or a 'models:' list"
    ]


def test_duplicate_id_line(workdir: Path) -> None:
    write(workdir / "models" / "a.yaml", spec_text("q2q-claude-v2", active="false"))
    write(workdir / "models" / "b.yaml", spec_text("q2q-claude-v2", active="false"))

    result = validate("models")

    assert result.exit_code == 1
    assert stdout_lines(result) == [
        "models/b.yaml:1: id: duplicate id 'q2q-claude-v2', also defined at models/a.yaml:1; "
        "give each spec its own id"
    ]


def test_duplicate_id_after_comment(workdir: Path) -> None:
    # Like the files in examples/, each spec starts with a comment line, so the
    # spec itself (its `id:` key) is on line 2.
    for name in ("a", "b"):
        text = "# A Claude classifier.\n" + spec_text("q2q-claude-v2", active="false")
        write(workdir / "models" / f"{name}.yaml", text)

    result = validate("models")

    assert stdout_lines(result)[0].startswith(
        "models/b.yaml:2: id: duplicate id 'q2q-claude-v2', also defined at models/a.yaml:2;"
    )


def test_one_line_file_problems_sorted(workdir: Path) -> None:
    # JSON is valid YAML, so a models file may sit on one line. Its extra-key
    # problem has a column and its duplicate-id problem has none, and sorting
    # the two must not compare None with an int.
    write(workdir / "models" / "a.yaml", spec_text("q2q-claude-v2", active="false"))
    spec = yaml_source.load(spec_text("q2q-claude-v2", active="false").encode())
    write(workdir / "models" / "b.yaml", json.dumps({"models": [spec], "owner": "ml"}))

    result = validate("models")

    assert "unexpected" not in result.stderr
    assert result.exit_code == 1
    assert sorted(line.split(": ")[1] for line in stdout_lines(result)) == ["id", "owner"]


def test_superseded_warning_exit_zero(workdir: Path) -> None:
    write(
        workdir / "models" / "v1.yaml",
        spec_text("q2q-claude-v1", effective_from="2025-01-15T00:00:00Z"),
    )
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))

    result = validate("models")

    assert result.exit_code == 0, result.output
    assert stdout_lines(result) == [
        "models/v1.yaml:1: warning: active: 'q2q-claude-v1' is superseded by 'q2q-claude-v2', "
        "which took effect later (2025-06-01T00:00:00+00:00); set 'active: false' here to say so"
    ]
    assert result.stderr == "models: valid: 2 files, 2 specs, 0 errors, 1 warning\n"


# --- --format json -----------------------------------------------------------------------------


def test_json_valid_document(workdir: Path) -> None:
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate("--format", "json", "models")

    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "valid": True,
        "files": 1,
        "specs": 1,
        "errors": 0,
        "warnings": 0,
        "problems": [],
    }


def test_json_invalid_document(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("--format", "json", "models")
    document = json.loads(result.stdout)

    assert result.exit_code == 1
    assert document["valid"] is False
    assert (document["files"], document["specs"], document["errors"]) == (2, 0, 3)
    assert document["warnings"] == 0
    assert document["problems"][0] == {
        "path": "models/bad-provider.yaml",
        "line": 2,
        "column": 11,
        "field": "provider",
        "message": "invalid value 'mistral'; allowed values: 'claude', 'openai' or 'gemini'",
        "severity": "error",
    }


def test_json_problem_keys(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    document = json.loads(validate("--format", "json", "models").stdout)

    for problem in document["problems"]:
        assert set(problem) == {"path", "line", "column", "field", "message", "severity"}


def test_json_no_summary_on_stderr(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("--format", "json", "models")

    assert result.stderr == ""


def test_json_warning_severity(workdir: Path) -> None:
    write(
        workdir / "models" / "v1.yaml",
        spec_text("q2q-claude-v1", effective_from="2025-01-15T00:00:00Z"),
    )
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))

    document = json.loads(validate("--format", "json", "models").stdout)

    assert document["valid"] is True
    assert document["warnings"] == 1
    assert document["problems"][0]["severity"] == "warning"
    assert document["problems"][0]["column"] is None


# --- --format github ---------------------------------------------------------------------------


def test_github_error_annotation(workdir: Path) -> None:
    write_bad_files(workdir / "models")

    result = validate("--format", "github", "models")

    assert result.exit_code == 1
    assert stdout_lines(result)[0] == (
        "::error file=models/bad-provider.yaml,line=2,col=11,title=q2q validate::provider: "
        "invalid value 'mistral'; allowed values: 'claude', 'openai' or 'gemini'"
    )


def test_github_warning_annotation(workdir: Path) -> None:
    write(
        workdir / "models" / "v1.yaml",
        spec_text("q2q-claude-v1", effective_from="2025-01-15T00:00:00Z"),
    )
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))

    result = validate("--format", "github", "models")

    assert result.exit_code == 0
    assert stdout_lines(result)[0].startswith(
        "::warning file=models/v1.yaml,line=1,title=q2q validate::active: 'q2q-claude-v1' "
        "is superseded"
    )


def test_github_annotation_without_line(workdir: Path) -> None:
    write(workdir / "models" / "big.yaml", "#" * (2 * 1024 * 1024))

    result = validate("--format", "github", "models")

    assert stdout_lines(result)[0].startswith(
        "::error file=models/big.yaml,title=q2q validate::the file is 2,097,152 bytes"
    )


def test_github_escapes_percent(workdir: Path) -> None:
    write(workdir / "models" / "pct.yaml", spec_text('"50%"', active="false"))

    result = validate("--format", "github", "models")

    assert "invalid value '50%25';" in stdout_lines(result)[0]


def test_github_escapes_file_property(workdir: Path) -> None:
    # A ',' separates the properties of a workflow command, so a comma inside
    # the file name must be escaped as %2C.
    write(workdir / "models" / "a,b.yaml", spec_text("q2q-x", provider="mistral"))

    result = validate("--format", "github", "models")

    assert stdout_lines(result)[0].startswith("::error file=models/a%2Cb.yaml,line=2,col=11,")


# --- registry.yaml beside the directory --------------------------------------------------------


def test_custom_taxonomy_valid(workdir: Path) -> None:
    write(workdir / "registry.yaml", CUSTOM_SETTINGS)
    write(workdir / "models" / "toxicity.yaml", CUSTOM_SPEC)

    result = validate("models")

    assert result.exit_code == 0, result.output
    assert result.stderr == "models: valid: 1 file, 1 spec, 0 errors, 0 warnings\n"


def test_custom_taxonomy_absent(workdir: Path) -> None:
    write(workdir / "models" / "toxicity.yaml", CUSTOM_SPEC)

    result = validate("models")

    assert result.exit_code == 1
    assert "models/toxicity.yaml:6:3: thresholds.toxicity: unknown field 'toxicity'; " in (
        result.stdout
    )


def test_custom_taxonomy_default_labels(workdir: Path) -> None:
    write(workdir / "registry.yaml", CUSTOM_SETTINGS)
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))

    result = validate("models")

    assert result.exit_code == 1
    assert "models/v2.yaml:6:3: thresholds.toxicity: missing required field 'toxicity'" in (
        stdout_lines(result)
    )


def test_invalid_settings_line(workdir: Path) -> None:
    write(
        workdir / "registry.yaml",
        CUSTOM_SETTINGS.replace("toxicity: probability", "toxicity: prob"),
    )
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate("models")

    assert result.exit_code == 1
    assert stdout_lines(result) == [
        "registry.yaml:3:15: taxonomy.thresholds.toxicity: "
        "input should be 'probability' or 'count', got 'prob'"
    ]


def test_settings_bool_strict(workdir: Path) -> None:
    # `yes` is a string in YAML 1.2, and spec files reject it for `active`. The
    # mass-retire guard in registry.yaml must not read it as true either.
    write(workdir / "registry.yaml", "reconciler:\n  allow_mass_retire: yes\n")
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate("models")

    assert result.exit_code == 1
    assert stdout_lines(result)[0].startswith("registry.yaml:2:22: reconciler.allow_mass_retire: ")


def test_settings_reserved_label(workdir: Path) -> None:
    write(workdir / "registry.yaml", "taxonomy:\n  thresholds:\n    model_dump: count\n")
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    result = validate("models")

    assert result.exit_code == 1
    assert "unexpected" not in result.stderr
    assert stdout_lines(result)[0].startswith("registry.yaml:3:")
    assert "taxonomy.thresholds" in stdout_lines(result)[0]


def test_dot_matches_absolute_path(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # registry.yaml beside models/ must apply whether models/ is named as '.'
    # from inside it or by its absolute path.
    write(workdir / "registry.yaml", CUSTOM_SETTINGS)
    write(workdir / "models" / "toxicity.yaml", CUSTOM_SPEC)
    monkeypatch.chdir(workdir / "models")

    by_absolute_path = validate(str(workdir / "models"))
    by_dot = validate(".")

    assert by_absolute_path.exit_code == 0, by_absolute_path.output
    assert by_dot.exit_code == 0, by_dot.output


# --- the installed script ----------------------------------------------------------------------


def run_q2q(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "q2q"
    assert script.exists(), f"the q2q script is not installed next to {sys.executable}"
    environment = os.environ | {"XDG_CACHE_HOME": str(cwd / "cache")}
    return subprocess.run(
        [str(script), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )


def test_subprocess_guide_valid(workdir: Path) -> None:
    shutil.copy(GUIDE_MODELS_FILE, workdir / "models" / "models.yaml")

    completed = run_q2q("validate", "models", cwd=workdir)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr == "models: valid: 1 file, 1 spec, 0 errors, 0 warnings\n"


def test_subprocess_bad_file(workdir: Path) -> None:
    write(workdir / "models" / "bad-provider.yaml", spec_text("q2q-mistral-v1", provider="mistral"))

    completed = run_q2q("validate", "models", cwd=workdir)

    assert completed.returncode == 1
    assert completed.stdout == BAD_PROVIDER_LINE + "\n"
    assert completed.stderr == "models: invalid: 1 file, 0 specs, 1 error, 0 warnings\n"


DRIFT_POLICY = """\
policies:
  - id: weekly
    distribution: {kind: positive_share}
    baseline:
      distribution: {positive: 0.30, negative: 0.70}
    current_window: 7x
    schedule: "0 6 * * 1"
"""


def test_drift_policy_checked(workdir: Path) -> None:
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))
    write(workdir / "policies" / "drift.yaml", DRIFT_POLICY)

    result = validate("models")

    assert result.exit_code == 1
    assert [line for line in stdout_lines(result) if line.startswith("policies/")] == [
        "policies/drift.yaml:6:21: policies[0].current_window: invalid window '7x'; "
        "write a whole number and a unit m, h, d or w, such as 7d"
    ]


def test_valid_drift_policy_passes(workdir: Path) -> None:
    write(workdir / "models" / "v2.yaml", spec_text("q2q-claude-v2"))
    write(workdir / "policies" / "drift.yaml", DRIFT_POLICY.replace("7x", "7d"))

    result = validate("models")

    assert result.exit_code == 0, result.output
