"""Evaluation reports: the `evals/<model-id>.json` file committed with a pull request.

A report contains the metrics of one evaluation run and three SHA-256 hashes
that tie it to what was evaluated: the spec's identity (provider, model,
prompt version, thresholds), the prompt file's bytes and the dataset's
content. `q2q validate --gates` recomputes the first two from the working
tree and takes the third from `policies/gates.yaml`; any difference makes the
report stale.

A report may be signed with HMAC-SHA256 under the key in
`Q2Q_EVAL_SIGNING_KEY`. The signature covers the canonical JSON of the whole
report except the `signature` field (keys sorted, no whitespace), so any
hand edit of metrics or hashes breaks it. `q2q eval run` writes reports and
`policies.gates` reads them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPORT_DIR = "evals"
REPORT_VERSION = 1
SIGNING_KEY_VARIABLE = "Q2Q_EVAL_SIGNING_KEY"
SIGNATURE_ALGORITHM = "hmac-sha256"


class ReportError(ValueError):
    """A report file cannot be read as a report."""


def report_path(repo_root: Path, model_id: str) -> Path:
    return repo_root / REPORT_DIR / f"{model_id}.json"


def build_report(
    *,
    model: Mapping[str, Any],
    hashes: Mapping[str, str],
    dataset: Mapping[str, Any],
    run: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """Assemble an unsigned report.

    `model` has modelId, provider, model, promptVersion and thresholds;
    `hashes` has identity, prompt and dataset.
    """
    return {
        "reportVersion": REPORT_VERSION,
        "model": dict(model),
        "hashes": {name: hashes[name] for name in ("identity", "prompt", "dataset")},
        "dataset": dict(dataset),
        "run": dict(run),
        "metrics": dict(metrics),
    }


def canonical_bytes(report: Mapping[str, Any]) -> bytes:
    """Return the bytes that a signature covers: the report without `signature`."""
    unsigned = {key: value for key, value in report.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def sign_report(report: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Return a copy of `report` with an HMAC-SHA256 signature under `key`."""
    digest = hmac.new(key.encode(), canonical_bytes(report), hashlib.sha256).hexdigest()
    return {**report, "signature": {"algorithm": SIGNATURE_ALGORITHM, "value": digest}}


def signature_is_valid(report: Mapping[str, Any], key: str) -> bool:
    """Return True if the report carries a valid signature under `key`."""
    signature = report.get("signature")
    if not isinstance(signature, Mapping) or signature.get("algorithm") != SIGNATURE_ALGORITHM:
        return False
    value = signature.get("value")
    if not isinstance(value, str):
        return False
    expected = hmac.new(key.encode(), canonical_bytes(report), hashlib.sha256).hexdigest()
    return hmac.compare_digest(value, expected)


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    """Write a report as indented JSON with sorted keys, so diffs stay small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def read_report(path: Path) -> dict[str, Any]:
    """Read and shape-check a report; raise `ReportError` naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    for name in ("hashes", "metrics", "model"):
        if not isinstance(data.get(name), dict):
            raise ReportError(f"{path}: missing or invalid '{name}'")
    slices = data["metrics"].get("slices")
    if not isinstance(slices, dict):
        raise ReportError(f"{path}: missing or invalid 'metrics.slices'")
    return data
