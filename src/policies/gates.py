"""Evaluation gates: an active model needs a fresh, trusted report that meets the thresholds.

`policies/gates.yaml` in the models repository declares the gates:

    dataset: {name: v3_evaluation, sha256: <content hash printed by q2q eval upload>}
    averaging: macro            # macro or micro: the average that min_f1.average gates
    min_support: 20             # fewest positives a label needs to be gated in a slice
    require_signature: true     # reports must carry a valid HMAC (Q2Q_EVAL_SIGNING_KEY)
    max_failed_rows: 0.02       # largest share of rows with a provider error
    min_f1:
      default: 0.70             # every label, in every language and in "all"
      average: 0.75             # the averaged F1 of every language and of "all"
      labels: {risk_min_cues: 0.85}
      languages: {es: 0.65}
      overrides: [{label: risk_min_cues, language: es, min: 0.60}]

The most specific F1 minimum wins: an override, then the language, then the
label, then the default. A label with fewer than `min_support` positives in a
language is not gated in that language. In the slice `all` it fails the gate,
because the dataset does not test it.

`check_report` is pure: it compares one spec's report with the gates and the
hashes of the working tree and returns `GateFailure`s. `gate_problems` reads
the files for `q2q validate --gates` and turns failures into problems.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from policies.eval_report import (
    SIGNING_KEY_VARIABLE,
    ReportError,
    read_report,
    report_path,
    signature_is_valid,
)
from registry_state import yaml_source
from registry_state.errors import InvalidSpecsError, Problem, Q2QError
from registry_state.loading import LoadedSpec
from registry_state.prompts import PromptError, find_prompt_file
from registry_state.validation_messages import problems_from_error

GATES_FILE = "policies/gates.yaml"
Ratio = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateDataset(_Strict):
    name: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class F1Override(_Strict):
    label: str
    language: str
    min: Ratio


class MinF1(_Strict):
    default: Ratio = 0.0
    average: Ratio | None = None
    labels: dict[str, Ratio] = {}
    languages: dict[str, Ratio] = {}
    overrides: list[F1Override] = []

    def for_slice(self, label: str, language: str) -> float:
        for override in self.overrides:
            if override.label == label and override.language == language:
                return override.min
        if language in self.languages:
            return self.languages[language]
        return self.labels.get(label, self.default)


class GatesPolicy(_Strict):
    dataset: GateDataset
    averaging: Literal["macro", "micro"] = "macro"
    min_support: Annotated[int, Field(ge=1)] = 1
    require_signature: StrictBool = False
    max_failed_rows: Ratio = 0.0
    min_f1: MinF1 = MinF1()


@dataclass(frozen=True)
class GateFailure:
    """One gate a model fails: which model and gate, the value found, and the fix."""

    model_id: str
    path: str
    gate: str
    message: str
    fix: str

    def problem(self) -> Problem:
        return Problem(self.path, None, None, field=self.gate,
                       message=f"{self.model_id}: {self.message}; {self.fix}")


def load_gates(repo_root: Path) -> GatesPolicy:
    """Read policies/gates.yaml; raise `InvalidSpecsError` with positioned problems."""
    path = repo_root / GATES_FILE
    if not path.is_file():
        raise InvalidSpecsError([Problem(GATES_FILE, message=(
            "missing; --gates needs policies/gates.yaml with at least 'dataset: {name, "
            "sha256}', where sha256 is the content hash 'q2q eval upload' prints"))])
    content = path.read_bytes()
    try:
        data = yaml_source.load(content)
    except yaml_source.YamlSourceError as error:
        raise InvalidSpecsError(
            [Problem(GATES_FILE, error.line, error.column, message=error.message)]) from None
    try:
        return GatesPolicy.model_validate(data)
    except ValidationError as error:
        raise InvalidSpecsError(problems_from_error(
            error, model=GatesPolicy, path=GATES_FILE, content=content)) from None


@dataclass(frozen=True)
class ExpectedHashes:
    """Hashes of the spec, prompt file and dataset that a current report must carry."""

    identity: str
    prompt: str
    dataset: str


def _format(value: float | None) -> str:
    return "null" if value is None else f"{value:.3f}"


def check_report(
    report: Mapping[str, Any],
    *,
    model_id: str,
    path: str,
    expected: ExpectedHashes,
    gates: GatesPolicy,
    signing_key: str | None,
) -> list[GateFailure]:
    """Return every gate the report fails; an empty list means the model may be active."""
    rerun = (f"run 'q2q eval run --model {model_id} --dataset {gates.dataset.name}' and "
             f"commit {path}")

    def fail(gate: str, message: str, fix: str = rerun) -> GateFailure:
        return GateFailure(model_id, path, gate, message, fix)

    failures = []
    hashes = report.get("hashes", {})
    for name, what in (("identity", "the spec's provider, model, prompt version or thresholds"),
                       ("prompt", "the prompt file"), ("dataset", "the gate dataset")):
        found, wanted = hashes.get(name), getattr(expected, name)
        if found != wanted:
            failures.append(fail(f"stale.{name}",
                                 f"report is stale: {what} changed since it was evaluated "
                                 f"({name} hash {str(found)[:12]} in the report, "
                                 f"{wanted[:12]} now)"))
    if failures:
        return failures

    signed = "signature" in report
    if signed or gates.require_signature:
        if not signed:
            return [fail("signature", "report is unsigned but policies/gates.yaml sets "
                         "require_signature", f"have the trusted evaluation job (with "
                         f"{SIGNING_KEY_VARIABLE} set) {rerun}")]
        if signing_key is None:
            if gates.require_signature:
                return [fail("signature", f"cannot verify the signature because "
                             f"{SIGNING_KEY_VARIABLE} is not set",
                             f"set {SIGNING_KEY_VARIABLE} in the CI job that runs "
                             "'q2q validate --gates'")]
        elif not signature_is_valid(report, signing_key):
            return [fail("signature", "report signature is invalid, so the report was edited "
                         "after it was signed or signed with another key", rerun)]

    run = report.get("run", {})
    total, failed = int(run.get("rowsTotal") or 0), int(run.get("rowsFailed") or 0)
    share = failed / total if total else 1.0
    if share > gates.max_failed_rows:
        failures.append(fail("max_failed_rows",
                             f"{failed} of {total} rows failed at the provider "
                             f"({share:.1%} > {gates.max_failed_rows:.1%})",
                             f"see 'q2q eval results {run.get('runId', 'RUN_ID')}', then {rerun}"))

    slices: Mapping[str, Any] = report["metrics"]["slices"]
    for language in sorted(slices, key=lambda name: (name != "all", name)):
        entry = slices[language]
        for label, values in entry["labels"].items():
            support = int(values.get("support") or 0)
            if support < gates.min_support:
                if language == "all":
                    failures.append(fail(
                        f"min_support[{label}]",
                        f"the dataset has {support} positives for {label}, fewer than "
                        f"min_support {gates.min_support}, so the label is untested",
                        f"add labelled examples to {gates.dataset.name}, upload it, update "
                        f"dataset.sha256 in {GATES_FILE}, then {rerun}"))
                continue
            minimum = gates.min_f1.for_slice(label, language)
            f1 = values.get("f1")
            if f1 is None or f1 < minimum:
                failures.append(fail(
                    f"min_f1[{label}, {language}]",
                    f"F1 {_format(f1)} is below {minimum:.3f} (support {support})",
                    f"improve the prompt or thresholds under a new id, then {rerun}"))
        average_minimum = gates.min_f1.average
        average = entry.get(gates.averaging, {}).get("f1")
        if average_minimum is not None and average is not None and average < average_minimum:
            failures.append(fail(
                f"min_f1.average[{gates.averaging}, {language}]",
                f"{gates.averaging} F1 {_format(average)} is below {average_minimum:.3f}",
                f"improve the prompt or thresholds under a new id, then {rerun}"))
    return failures


def gate_problems(
    repo_root: Path, specs: Sequence[LoadedSpec], *, environ: Mapping[str, str]
) -> list[Problem]:
    """Check every spec with `active: true` against the gates; return one problem per failure.

    A spec that becomes active in a pull request has `active: true` in the
    working tree, so it is checked like one that is active already.
    """
    try:
        gates = load_gates(repo_root)
    except InvalidSpecsError as error:
        return list(error.problems)
    signing_key = environ.get(SIGNING_KEY_VARIABLE) or None
    problems: list[Problem] = []
    for loaded in specs:
        spec = loaded.spec
        if not spec.active:
            continue
        path = report_path(repo_root, spec.id).relative_to(repo_root).as_posix()
        rerun = f"run 'q2q eval run --model {spec.id} --dataset {gates.dataset.name}'"
        try:
            prompt = find_prompt_file(repo_root, spec.prompt_version)
        except PromptError as error:
            problems.append(GateFailure(spec.id, loaded.path, "prompt", str(error),
                                        "add the prompt file, then " + rerun).problem())
            continue
        try:
            report = read_report(repo_root / path)
        except FileNotFoundError:
            problems.append(GateFailure(
                spec.id, path, "report", "the model is active but has no evaluation report",
                f"{rerun} and commit {path}").problem())
            continue
        except (ReportError, Q2QError) as error:
            problems.append(GateFailure(spec.id, path, "report", str(error),
                                        f"{rerun} and commit {path}").problem())
            continue
        expected = ExpectedHashes(identity=spec.config_hash(), prompt=prompt.sha256,
                                  dataset=gates.dataset.sha256)
        failures = check_report(report, model_id=spec.id, path=path, expected=expected,
                                gates=gates, signing_key=signing_key)
        problems += [failure.problem() for failure in failures]
    return problems
