"""`q2q schema`: JSON Schemas that editors and check-jsonschema validate YAML against.

Real: the click command, YAML files written here and the check-jsonschema
command line (from the `test` extra), run offline against the local schema
file. The same files go through the product's loader, so the schema and the
loader are checked to agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from registry_state.loading import SourceFile, load_spec_file
from registry_state.repo_settings import parse_settings
from registry_state.spec import ModelSpec
from support.git_repo import spec_yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "authoring"
GUIDE_FILE = Path(__file__).resolve().parents[1] / "data" / "governance_guide_models.yaml"
CHECK_TIMEOUT_SECONDS = 60


def run(*arguments: str) -> Result:
    return CliRunner().invoke(cli, ["schema", *arguments], catch_exceptions=False)


@pytest.fixture
def schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    result = run("--output-dir", "schemas")
    assert result.exit_code == 0, result.output
    return tmp_path / "schemas"


def check_jsonschema(schema: Path, instance: Path) -> subprocess.CompletedProcess[str]:
    program = shutil.which("check-jsonschema")
    if program is None:
        pytest.skip("check-jsonschema is not installed; install the 'test' extra")
    return subprocess.run(
        [program, "--schemafile", str(schema), str(instance)],
        capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS, check=False,
    )


def loader_accepts(path: Path) -> bool:
    result = load_spec_file(SourceFile(path.name, path.read_bytes()), ModelSpec)
    return not result.problems and bool(result.specs)


VALID_SPECS = {
    "single-spec": spec_yaml("q2q-claude-v1", active=True),
    "unquoted-timestamp": spec_yaml("q2q-claude-v1", effective_from="2025-06-01T00:00:00Z"),
    "date": spec_yaml("q2q-claude-v1", effective_from="2025-06-01"),
    "offset-and-space": spec_yaml("q2q-claude-v1",
                                  effective_from='"2025-06-01 06:30:00.5+01:00"'),
    "number-spellings": spec_yaml("q2q-claude-v1", thresholds={
        "confidence_increase": ".80", "confidence_decrease": "8e-1", "belonging_increase": "1"}),
    "description": spec_yaml("q2q-claude-v1", description="Baseline"),
}

INVALID_SPECS = {
    "probability-above-one": (
        spec_yaml("q2q-claude-v1", thresholds={"confidence_increase": "1.8"}),
        "$.thresholds.confidence_increase: 1.8 is greater than the maximum of 1"),
    "count-not-integer": (
        spec_yaml("q2q-claude-v1", thresholds={"risk_min_cues": "1.5"}),
        "$.thresholds.risk_min_cues: 1.5 is not of type 'integer'"),
    "no-offset": (
        spec_yaml("q2q-claude-v1", effective_from="2025-06-01T00:00:00"),
        "$.effective_from: '2025-06-01T00:00:00' is not valid under any of the given schemas"),
    "yes-for-true": (
        spec_yaml("q2q-claude-v1").replace("active: false", "active: yes"),
        "$.active: 'yes' is not of type 'boolean'"),
    "unknown-provider": (
        spec_yaml("q2q-claude-v1", provider="mistral"),
        "$.provider: 'mistral' is not one of ['claude', 'openai', 'gemini']"),
    "unknown-field": (
        spec_yaml("q2q-claude-v1") + "owner: nlp\n",
        "Additional properties are not allowed ('owner' was unexpected)"),
    "missing-threshold": (
        spec_yaml("q2q-claude-v1").replace("  risk_min_cues: 1\n", ""),
        "$.thresholds: 'risk_min_cues' is a required property"),
    "uppercase-id": (
        spec_yaml("Q2Q-Claude"),
        "$.id: 'Q2Q-Claude' does not match '^[a-z0-9][a-z0-9.-]*$'"),
    "extra-key-beside-models": (
        "version: 1\nmodels: []\n",
        "Additional properties are not allowed ('version' was unexpected)"),
}


@pytest.mark.parametrize("name", sorted(VALID_SPECS))
def test_check_jsonschema_accepts_valid(schemas: Path, tmp_path: Path, name: str) -> None:
    instance = tmp_path / "models" / f"{name}.yaml"
    instance.write_text(VALID_SPECS[name])

    result = check_jsonschema(schemas / "spec.schema.json", instance)

    assert loader_accepts(instance)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


@pytest.mark.parametrize("name", sorted(INVALID_SPECS))
def test_check_jsonschema_rejects_invalid(schemas: Path, tmp_path: Path, name: str) -> None:
    text, message = INVALID_SPECS[name]
    instance = tmp_path / "models" / f"{name}.yaml"
    instance.write_text(text)

    result = check_jsonschema(schemas / "spec.schema.json", instance)

    assert not loader_accepts(instance)
    assert result.returncode == 1
    assert message in result.stdout


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(DATA / "guide_models.yaml", id="guide-models-list"),
        pytest.param(DATA / "anchors_and_flow.yaml", id="anchors-and-merge-keys"),
        pytest.param(GUIDE_FILE, id="guide-example"),
    ],
)
def test_models_files_accepted(schemas: Path, source: Path) -> None:
    result = check_jsonschema(schemas / "spec.schema.json", source)

    assert result.returncode == 0, result.stdout + result.stderr


def test_registry_schema_checks_settings(schemas: Path, tmp_path: Path) -> None:
    good = tmp_path / "registry.yaml"
    good.write_text("taxonomy:\n  thresholds:\n    toxicity: probability\n    flags: count\n"
                    "reconciler:\n  max_retire_share: 0.8\n")
    bad = tmp_path / "bad-registry.yaml"
    bad.write_text("reconciler:\n  max_retire_share: 1.5\n  allow_mass_retire: maybe\n")

    accepted = check_jsonschema(schemas / "registry.schema.json", good)
    rejected = check_jsonschema(schemas / "registry.schema.json", bad)

    assert parse_settings(good.read_bytes(), path="registry.yaml").reconciler.max_retire_share \
        == 0.8
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert rejected.returncode == 1
    assert "$.reconciler.max_retire_share: 1.5 is greater than the maximum of 1" in \
        rejected.stdout
    assert "$.reconciler.allow_mass_retire: 'maybe' is not of type 'boolean'" in rejected.stdout


def test_custom_taxonomy_in_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "registry.yaml").write_text(
        "taxonomy:\n  thresholds:\n    toxicity: probability\n    flag_count: count\n")

    result = run("spec")

    schema = json.loads(result.stdout)
    thresholds = schema["definitions"]["Thresholds"]
    assert sorted(thresholds["required"]) == ["flag_count", "toxicity"]
    assert thresholds["properties"]["toxicity"]["maximum"] == 1
    assert thresholds["properties"]["flag_count"]["type"] == "integer"


def test_spec_schema_shape() -> None:
    result = run()

    schema = json.loads(result.stdout)
    assert result.exit_code == 0
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["else"] == {"$ref": "#/definitions/ModelSpec"}
    assert schema["then"]["properties"]["models"]["items"] == {"$ref": "#/definitions/ModelSpec"}
    assert "$defs" not in json.dumps(schema)
    assert '"ge"' not in json.dumps(schema)
    active = schema["definitions"]["ModelSpec"]["properties"]["active"]
    assert active["type"] == "boolean"
    assert active["description"].startswith("Whether the spec is meant to be active.")


def test_invalid_settings_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "registry.yaml").write_text("taxonomy: [\n")

    result = CliRunner().invoke(cli, ["schema"])

    assert result.exit_code == 1
    assert result.output.startswith("error: registry.yaml:2:1: ")


def test_output_dir_lists_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    result = run("--output-dir", "schemas", "--path", "models")

    assert result.exit_code == 0
    assert result.output == ("Wrote the spec schema to schemas/spec.schema.json\n"
                             "Wrote the registry schema to schemas/registry.schema.json\n")


def test_schema_help_names_modeline() -> None:
    result = run("--help")

    assert result.exit_code == 0
    assert "# yaml-language-server: $schema=../schemas/spec.schema.json" in result.output
