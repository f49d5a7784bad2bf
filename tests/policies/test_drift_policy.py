"""Drift policy files: defaults, every kind of baseline, and positioned errors."""

from __future__ import annotations

import datetime as dt

import pytest

from policies.drift_policy import (
    Histogram,
    PolicyNotFoundError,
    PositiveShare,
    find_policy,
    parse_duration,
    parse_policies,
)
from registry_state.errors import InvalidSpecsError

MINIMAL = b"""\
policies:
  - id: weekly
    baseline:
      distribution: {positive: 0.30, negative: 0.70}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidSpecsError) as caught:
        parse_policies(text.encode())
    return [str(problem) for problem in caught.value.problems]


def test_parse_defaults() -> None:
    [policy] = parse_policies(MINIMAL)

    assert policy.models is None
    assert isinstance(policy.distribution, PositiveShare)
    assert policy.window == dt.timedelta(days=7)
    assert policy.thresholds.psi.bands().moderate == 0.1
    assert policy.thresholds.psi.bands().alert == 0.2
    assert policy.thresholds.js.bands().moderate == 0.05
    assert policy.thresholds.js.bands().alert == 0.1
    assert policy.min_sample_size == 100
    assert policy.schedule == "0 6 * * *"
    assert policy.records_alerts
    assert policy.rollback_options() is None


def test_parse_full_policy() -> None:
    [policy] = parse_policies(b"""\
policies:
  - id: scores
    models: [q2q-claude-v2-multilingual]
    labels: [confidence_increase]
    languages: [en, uk]
    distribution: {kind: histogram, bins: 4}
    baseline:
      window: {start: "2025-10-01T00:00:00Z", end: 2025-11-01}
    current_window: 24h
    thresholds: {psi: {moderate: 0.15, alert: 0.3}}
    min_sample_size: 20
    schedule: "*/15 * * * *"
    actions: [record, {notify: {url_env: Q2Q_DRIFT_WEBHOOK_URL}}, {rollback: {push: false}}]
""")

    assert isinstance(policy.distribution, Histogram)
    assert policy.distribution.bins == 4
    assert policy.baseline.window is not None
    assert policy.baseline.window.end == dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    assert policy.window == dt.timedelta(hours=24)
    assert policy.thresholds.js.alert == 0.1
    assert [target.url_env for target in policy.notify_targets()] == ["Q2Q_DRIFT_WEBHOOK_URL"]
    options = policy.rollback_options()
    assert options is not None
    assert options.push is False


def test_parse_missing_file_no_policies() -> None:
    assert parse_policies(None) == []
    assert parse_policies(b"") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("7d", dt.timedelta(days=7), id="days"),
        pytest.param("30m", dt.timedelta(minutes=30), id="minutes"),
        pytest.param("2w", dt.timedelta(weeks=2), id="weeks"),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


def test_error_unknown_field_suggests() -> None:
    assert problems("""\
policies:
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.7}}
    labelz: [x]
""") == ["policies/drift.yaml:4:5: policies[0].labelz: unknown field 'labelz'; "
         "did you mean 'labels'?"]


def test_error_bad_window_and_cron() -> None:
    found = problems("""\
policies:
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.7}}
    current_window: 7x
    schedule: "0 6 * *"
""")

    assert found[0] == ("policies/drift.yaml:4:21: policies[0].current_window: invalid window "
                        "'7x'; write a whole number and a unit m, h, d or w, such as 7d")
    assert found[1].startswith("policies/drift.yaml:5:15: policies[0].schedule: invalid cron "
                               "schedule '0 6 * *'")


def test_error_shares_do_not_sum_to_one() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.6}}
""")

    assert found.startswith("policies/drift.yaml:2:5: policies[0]: ")
    assert "sum to 0.9, not 1" in found


def test_error_histogram_baseline_length() -> None:
    [found] = problems("""\
policies:
  - id: scores
    distribution: {kind: histogram, bins: 4}
    baseline: {distribution: [0.5, 0.5]}
""")

    assert "a histogram baseline is a list of 4 shares" in found


def test_error_two_baseline_sources() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline:
      distribution: {positive: 0.3, negative: 0.7}
      evaluation_dataset: evals/set.csv
""")

    assert found.startswith("policies/drift.yaml:4:7: policies[0].baseline: a baseline takes "
                            "exactly one of")


def test_error_baseline_window_reversed() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline:
      window: {start: "2025-02-01T00:00:00Z", end: "2025-01-01T00:00:00Z"}
""")

    assert "policies[0].baseline.window: baseline window start" in found
    assert "is not before end" in found


def test_error_window_without_offset() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline:
      window: {start: "2025-01-01T00:00:00", end: "2025-02-01T00:00:00Z"}
""")

    assert "policies[0].baseline.window.start" in found
    assert "has no UTC offset" in found


def test_error_unknown_action() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.7}}
    actions: [record, page-someone]
""")

    assert found == ("policies/drift.yaml:4:23: policies[0].actions[1]: invalid action "
                     "'page-someone'; allowed: record, rollback, {notify: {url_env: NAME}} or "
                     "{rollback: {push: false}}")


def test_error_duplicate_policy_id() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.7}}
  - id: weekly
    baseline: {distribution: {positive: 0.3, negative: 0.7}}
""")

    assert found == ("policies/drift.yaml:4: policies[1].id: policy id 'weekly' is already used "
                     "on line 2; give each policy its own id")


def test_error_dataset_with_histogram() -> None:
    [found] = problems("""\
policies:
  - id: weekly
    distribution: {kind: histogram}
    baseline: {evaluation_dataset: evals/set.csv}
""")

    assert "fit only distribution kind positive_share" in found


def test_error_not_a_policy_file() -> None:
    assert problems("- id: weekly\n") == [
        "policies/drift.yaml:1:1: policies: a drift policy file is a mapping with a "
        "'policies:' list, each item starting with '- id: ...'"
    ]


def test_error_yaml_syntax() -> None:
    [found] = problems("policies:\n  - id: [weekly\n")

    assert found.startswith("policies/drift.yaml:3:")


def test_find_policy_lists_ids() -> None:
    policies = parse_policies(MINIMAL)

    with pytest.raises(PolicyNotFoundError, match=r"no drift policy with id 'daily' "
                       r"\(policies: weekly\); check --policy"):
        find_policy(policies, "daily", path="policies/drift.yaml")
