"""Actions on a drift alert: log it, notify a webhook, open a rollback branch.

Input: a policy and the alerting checks of one model. Output: an
`ActionOutcome` that `drift_check` stores with those checks. An action that
fails is logged and recorded in the outcome; it never undoes the stored checks
and never stops the other actions. The notify action POSTs a Slack-compatible
JSON body (`text` plus `blocks`) to the URL in the environment variable the
policy names; the rollback action is `drift_rollback.open_rollback_branch`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.drift_policy import DriftPolicy, Notify
from reconciler.drift_rollback import open_rollback_branch
from reconciler.git_source import GitSource
from registry_state.drift_store import CheckRecord
from registry_state.errors import Q2QError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertGroup:
    """The alerting checks of one model in one policy run."""

    model_id: str
    revision: str
    alerts: Sequence[CheckRecord]


@dataclass
class ActionOutcome:
    recorded: bool = False
    notifications: list[dict[str, Any]] = field(default_factory=list)
    rollback_branch: str | None = None
    rollback: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"recorded": self.recorded, "notifications": self.notifications,
                "rollback": self.rollback}


def alert_message(policy: DriftPolicy, group: AlertGroup) -> dict[str, Any]:
    """Build the Slack-compatible webhook body for one model's alerts."""
    lines = [
        f"- {record.label} / {record.language}: PSI {_score(record.psi)}, JS "
        f"{_score(record.js)}, n={record.sample_size}"
        for record in group.alerts
    ]
    window = group.alerts[0].window
    summary = (f"Drift alert for model {group.model_id} (policy {policy.id}): "
               f"{len(group.alerts)} label/language groups over the alert threshold in "
               f"[{_iso(window.start)}, {_iso(window.end)})")
    details = "\n".join(lines)
    return {
        "text": f"{summary}\n{details}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details}},
        ],
        "modelId": group.model_id,
        "policyId": policy.id,
        "revision": group.revision,
    }


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


Poster = Callable[[str, bytes, float], int]


def post_json(url: str, body: bytes, timeout_s: float) -> int:
    """POST `body` as JSON and return the HTTP status."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        status: int = response.status
        return status


class ActionRunner:
    """Run the alert actions of a policy; the webhook poster can be replaced in tests."""

    def __init__(
        self,
        source: GitSource,
        *,
        spec_dir: str = "models",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        poster: Poster = post_json,
    ) -> None:
        self.source = source
        self.spec_dir = spec_dir
        self.clock = clock
        self.poster = poster

    def run(self, policy: DriftPolicy, group: AlertGroup) -> ActionOutcome:
        outcome = ActionOutcome()
        if policy.records_alerts:
            logger.warning(
                "Drift alert: model %s, policy %s, %d groups: %s", group.model_id, policy.id,
                len(group.alerts),
                ", ".join(f"{r.label}/{r.language} PSI {_score(r.psi)} JS {_score(r.js)}"
                          for r in group.alerts),
            )
            outcome.recorded = True
        for target in policy.notify_targets():
            outcome.notifications.append(self._notify(target, policy, group))
        options = policy.rollback_options()
        if options is not None:
            try:
                result = open_rollback_branch(
                    self.source, revision=group.revision, model_id=group.model_id,
                    spec_dir=self.spec_dir, now=self.clock(), options=options,
                    reason=f"drift policy {policy.id} raised {len(group.alerts)} alerts",
                )
            except Q2QError as error:
                logger.error("Rollback branch for model %s (policy %s) not created: %s",
                             group.model_id, policy.id, error)
                outcome.rollback = {"error": str(error)}
            else:
                outcome.rollback_branch = result.branch
                outcome.rollback = result.as_json()
        return outcome

    def _notify(self, target: Notify, policy: DriftPolicy, group: AlertGroup) -> dict[str, Any]:
        url = os.environ.get(target.url_env)
        if not url:
            logger.error("Drift notification for model %s not sent: environment variable %s "
                         "is not set", group.model_id, target.url_env)
            return {"urlEnv": target.url_env, "sent": False,
                    "error": f"environment variable {target.url_env} is not set"}
        body = json.dumps(alert_message(policy, group)).encode()
        try:
            status = self.poster(url, body, float(target.timeout_s))
        except (urllib.error.URLError, OSError, ValueError) as error:
            # The URL is a secret, so only the variable's name is logged.
            logger.error("Drift notification to %s for model %s failed: %s", target.url_env,
                         group.model_id, getattr(error, "reason", error))
            return {"urlEnv": target.url_env, "sent": False, "error": str(
                getattr(error, "reason", error))}
        logger.info("Sent drift notification to %s for model %s (HTTP %d)", target.url_env,
                    group.model_id, status)
        return {"urlEnv": target.url_env, "sent": True, "status": status}
