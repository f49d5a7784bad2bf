"""Drift policies as declared in `policies/drift.yaml` of the models repository.

Input: the bytes of the policy file. Output: validated `DriftPolicy` objects,
or `InvalidSpecsError` whose problems name the file, line and field. The
reconciler's drift check, its scheduler and `q2q drift check` call
`parse_policies`. A file looks like this:

    policies:
      - id: label-shares-weekly
        models: [q2q-claude-v2-multilingual]   # default: the active models
        labels: [confidence_increase]          # default: every label with data
        languages: [en, uk]                    # default: every language with data
        distribution: {kind: positive_share}   # or {kind: histogram, bins: 10}
        baseline:
          distribution: {positive: 0.30, negative: 0.70}
        current_window: 7d
        thresholds: {psi: {moderate: 0.1, alert: 0.2}, js: {moderate: 0.05, alert: 0.1}}
        min_sample_size: 100
        schedule: "0 6 * * *"
        actions: [record, {notify: {url_env: Q2Q_DRIFT_WEBHOOK_URL}}, rollback]

A baseline is exactly one of: `distribution` (shares for every group),
`by_label` (shares per label), `window` (a fixed, half-open UTC time window of
the model's own predictions) or `evaluation_dataset` (a CSV or JSON Lines file
in the models repository whose label shares per language are the baseline).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from policies.drift_metrics import JS_BANDS, PSI_BANDS, Bands
from registry_state import yaml_source
from registry_state.errors import InvalidSpecsError, Problem, Q2QError
from registry_state.spec import ID_PATTERN, parse_effective_from
from registry_state.validation_messages import problems_from_error

POLICY_FILE = "policies/drift.yaml"
SHARE_TOLERANCE = 1e-6
"""How far the shares of an explicit baseline may sum from 1 (rounding in YAML)."""

MAX_BINS = 100

_DURATION = re.compile(r"^([1-9][0-9]*)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

Name = Annotated[str, Field(min_length=1, max_length=50)]
Share = Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
Instant = Annotated[dt.datetime, BeforeValidator(parse_effective_from)]


def parse_duration(text: str) -> dt.timedelta:
    """Turn `30m`, `24h`, `7d` or `2w` into a timedelta."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"invalid window {text!r}; write a whole number and a unit m, h, d or w, such as 7d"
        )
    return dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PositiveShare(_Strict):
    """The share of predictions with the positive decision, per label and language."""

    kind: Literal["positive_share"]

    @property
    def bin_names(self) -> tuple[str, ...]:
        return ("positive", "negative")


class Histogram(_Strict):
    """Scores in `bins` equal-width bins over [0, 1]; a score of 1.0 falls in the last bin."""

    kind: Literal["histogram"]
    bins: Annotated[StrictInt, Field(ge=2, le=MAX_BINS)] = 10

    @property
    def bin_names(self) -> tuple[str, ...]:
        width = 1 / self.bins
        return tuple(f"[{i * width:.3g}, {(i + 1) * width:.3g})" for i in range(self.bins))


Distribution = Annotated[PositiveShare | Histogram, Field(discriminator="kind")]
ShareSpec = dict[Literal["positive", "negative"], Share] | list[Share]


class TimeWindow(_Strict):
    """A half-open UTC interval [start, end)."""

    start: Instant
    end: Instant

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start >= self.end:
            raise ValueError(
                f"baseline window start {self.start.isoformat()} is not before end "
                f"{self.end.isoformat()}; swap them or widen the window"
            )
        return self


class Baseline(_Strict):
    distribution: ShareSpec | None = None
    by_label: dict[Name, ShareSpec] | None = None
    window: TimeWindow | None = None
    evaluation_dataset: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Baseline:
        given = [name for name in ("distribution", "by_label", "window", "evaluation_dataset")
                 if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a baseline takes exactly one of distribution, by_label, window or "
                f"evaluation_dataset, got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def source(self) -> str:
        for name in ("distribution", "by_label", "window"):
            if getattr(self, name) is not None:
                return name
        return "evaluation_dataset"


class Thresholds(_Strict):
    moderate: Annotated[StrictFloat | StrictInt, Field(ge=0)]
    alert: Annotated[StrictFloat | StrictInt, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.moderate > self.alert:
            raise ValueError(
                f"moderate threshold {self.moderate} is above alert threshold {self.alert}; "
                "moderate must be at most alert"
            )
        return self

    def bands(self) -> Bands:
        return Bands(moderate=float(self.moderate), alert=float(self.alert))


class MetricThresholds(_Strict):
    psi: Thresholds = Thresholds(moderate=PSI_BANDS.moderate, alert=PSI_BANDS.alert)
    js: Thresholds = Thresholds(moderate=JS_BANDS.moderate, alert=JS_BANDS.alert)


class Notify(_Strict):
    """POST a Slack-compatible JSON message to the URL held by an environment variable.

    A webhook URL carries its own secret, so the policy file names only the variable.
    """

    url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    timeout_s: Annotated[StrictFloat | StrictInt, Field(gt=0, le=60)] = 10


class RollbackOptions(_Strict):
    push: bool = True
    remote: Annotated[str, Field(min_length=1, max_length=100)] = "origin"


class Record(_Strict):
    """Log the alert at WARNING; every check is stored whether or not this is listed."""


def _action_mapping(value: object) -> object:
    # `record` and `rollback` may be written alone, as a name without options.
    if value in ("record", "rollback"):
        return {value: {}}
    if isinstance(value, str):
        raise ValueError(
            f"invalid action {value!r}; allowed: record, rollback, "
            "{notify: {url_env: NAME}} or {rollback: {push: false}}"
        )
    return value


class Action(_Strict):
    """One action on alert; exactly one of its fields is set."""

    record: Record | None = None
    notify: Notify | None = None
    rollback: RollbackOptions | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        given = [name for name in ("record", "notify", "rollback") if getattr(self, name)
                 is not None]
        if len(given) != 1:
            raise ValueError(
                f"an action sets exactly one of record, notify or rollback, got "
                f"{', '.join(given) or 'none'}"
            )
        return self


class DriftPolicy(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=100, pattern=ID_PATTERN)]
    models: Annotated[list[Annotated[str, Field(pattern=ID_PATTERN)]], Field(min_length=1)] | None \
        = None
    labels: Annotated[list[Name], Field(min_length=1)] | None = None
    languages: Annotated[list[Annotated[str, Field(min_length=1, max_length=10)]],
                         Field(min_length=1)] | None = None
    distribution: Distribution = PositiveShare(kind="positive_share")
    baseline: Baseline
    current_window: StrictStr = "7d"
    thresholds: MetricThresholds = MetricThresholds()
    min_sample_size: Annotated[StrictInt, Field(ge=1)] = 100
    schedule: StrictStr = "0 6 * * *"
    actions: list[Annotated[Action, BeforeValidator(_action_mapping)]] = Field(
        default_factory=lambda: [Action(record=Record())]
    )

    @field_validator("current_window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone=dt.UTC)
        except ValueError as error:
            raise ValueError(
                f"invalid cron schedule {value!r} ({error}); write five fields: minute hour "
                "day-of-month month day-of-week, such as '0 6 * * *' for 06:00 UTC daily"
            ) from None
        return value

    @model_validator(mode="after")
    def _baseline_fits_distribution(self) -> DriftPolicy:
        baseline = self.baseline
        explicit = [baseline.distribution] if baseline.distribution is not None else \
            list((baseline.by_label or {}).values())
        for shares in explicit:
            _check_shares(shares, self.distribution)
        if baseline.evaluation_dataset is not None and isinstance(self.distribution, Histogram):
            raise ValueError(
                "an evaluation_dataset baseline gives label shares, which fit only "
                "distribution kind positive_share, not histogram"
            )
        return self

    @property
    def window(self) -> dt.timedelta:
        return parse_duration(self.current_window)

    def rollback_options(self) -> RollbackOptions | None:
        return next((a.rollback for a in self.actions if a.rollback is not None), None)

    def notify_targets(self) -> list[Notify]:
        return [action.notify for action in self.actions if action.notify is not None]

    @property
    def records_alerts(self) -> bool:
        return any(action.record is not None for action in self.actions)


def _check_shares(shares: ShareSpec, distribution: PositiveShare | Histogram) -> None:
    if isinstance(distribution, PositiveShare):
        if not isinstance(shares, dict) or set(shares) != {"positive", "negative"}:
            raise ValueError(
                "a positive_share baseline is a mapping {positive: SHARE, negative: SHARE}, "
                f"got {shares!r}"
            )
        values = [shares["positive"], shares["negative"]]
    else:
        if not isinstance(shares, list) or len(shares) != distribution.bins:
            raise ValueError(
                f"a histogram baseline is a list of {distribution.bins} shares, one per bin, "
                f"got {shares!r}"
            )
        values = list(shares)
    if abs(sum(values) - 1) > SHARE_TOLERANCE:
        raise ValueError(f"baseline shares {shares!r} sum to {sum(values):g}, not 1")


def baseline_shares(shares: ShareSpec) -> list[float]:
    """Return explicit shares in bin order: positive first for a positive share."""
    if isinstance(shares, dict):
        return [float(shares["positive"]), float(shares["negative"])]
    return [float(value) for value in shares]


def parse_policies(content: bytes | None, *, path: str = POLICY_FILE) -> list[DriftPolicy]:
    """Validate a policy file; a missing or empty file declares no policies."""
    if content is None:
        return []
    try:
        data = yaml_source.load(content)
    except yaml_source.YamlSourceError as error:
        raise InvalidSpecsError([Problem(path, error.line, error.column,
                                         message=error.message)]) from None
    if data is None:
        return []
    if not isinstance(data, dict) or "policies" not in data:
        raise InvalidSpecsError([Problem(
            path, 1, 1, field="policies",
            message="a drift policy file is a mapping with a 'policies:' list, each item "
            "starting with '- id: ...'",
        )])
    extra = sorted(str(key) for key in data if key != "policies")
    if extra:
        position = yaml_source.locate(content, (extra[0],))
        raise InvalidSpecsError([Problem(
            path, position.line if position else None, position.column if position else None,
            field=extra[0], message=f"unknown top-level key '{extra[0]}'; a drift policy file "
            "holds only the 'policies:' list",
        )])
    items = data["policies"]
    if not isinstance(items, list):
        position = yaml_source.locate(content, ("policies",), key=False)
        raise InvalidSpecsError([Problem(
            path, position.line if position else None, position.column if position else None,
            field="policies", message="'policies:' must be a list of policies",
        )])

    policies: list[DriftPolicy] = []
    problems: list[Problem] = []
    first_line: dict[str, int | None] = {}
    lines = yaml_source.item_lines(content, "policies")
    for index, item in enumerate(items):
        try:
            policy = DriftPolicy.model_validate(item, strict=False)
        except ValidationError as error:
            problems += problems_from_error(
                error, model=DriftPolicy, path=path, content=content, prefix=("policies", index)
            )
            continue
        line = lines[index] if index < len(lines) else None
        if policy.id in first_line:
            problems.append(Problem(
                path, line, field=f"policies[{index}].id",
                message=f"policy id '{policy.id}' is already used on line "
                f"{first_line[policy.id]}; give each policy its own id",
            ))
            continue
        first_line[policy.id] = line
        policies.append(policy)
    if problems:
        raise InvalidSpecsError(problems)
    return policies


class PolicyNotFoundError(Q2QError):
    """No drift policy with the requested id is declared at the revision read."""


def find_policy(policies: list[DriftPolicy], policy_id: str, *, path: str) -> DriftPolicy:
    """Return the policy with `policy_id`, or raise `PolicyNotFoundError` listing the ids."""
    for policy in policies:
        if policy.id == policy_id:
            return policy
    known = ", ".join(policy.id for policy in policies) or "none"
    raise PolicyNotFoundError(
        f"{path}: no drift policy with id '{policy_id}' (policies: {known}); check --policy"
    )
