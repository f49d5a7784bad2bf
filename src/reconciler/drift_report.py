"""`q2q drift report --html FILE`: one self-contained HTML page of stored drift checks.

Input: the drift_checks rows of the last `days` days. Output: a page with one
chart per (policy, model, label, language): PSI and JS divergence over time as
inline SVG, the moderate and alert thresholds as dashed lines and each alert
as a red mark. The page has no scripts and loads nothing from the network.
NOTE: the thresholds drawn are the governance guide's defaults (PSI 0.1 and
0.2, JS 0.05 and 0.1), because drift_checks stores the status a policy gave,
not its thresholds.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from policies.drift_metrics import JS_BANDS, PSI_BANDS
from registry_state import drift_store

WIDTH, HEIGHT, PAD = 640, 200, 40
MAX_CHECKS = 200_000
COLOURS = {"psi": "#1f5fbf", "js": "#c77c00"}


def _points(series: list[dict[str, Any]], key: str, *, start: float, span: float,
            top: float) -> list[tuple[float, float, dict[str, Any]]]:
    points = []
    for check in series:
        value = check[key]
        if value is None:
            continue
        moment = dt.datetime.fromisoformat(check["checkDate"]).timestamp()
        x = PAD + (moment - start) / span * (WIDTH - 2 * PAD)
        y = HEIGHT - PAD - min(value, top) / top * (HEIGHT - 2 * PAD)
        points.append((x, y, check))
    return points


def _chart(series: list[dict[str, Any]]) -> str:
    moments = [dt.datetime.fromisoformat(c["checkDate"]).timestamp() for c in series]
    start, span = min(moments), max(max(moments) - min(moments), 1.0)
    values = [c[k] for c in series for k in ("psiScore", "jsScore") if c[k] is not None]
    top = max([PSI_BANDS.alert * 1.5, *values]) * 1.05

    def y_of(value: float) -> float:
        return float(HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD))

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" role="img">',
             f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
             'fill="none" stroke="#ccc"/>']
    for metric, bands in (("psi", PSI_BANDS), ("js", JS_BANDS)):
        for name, level in (("moderate", bands.moderate), ("alert", bands.alert)):
            y = y_of(level)
            parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{COLOURS[metric]}" stroke-dasharray="4 3" opacity="0.6"/>'
                         f'<text x="{WIDTH - PAD + 2}" y="{y + 3:.1f}" font-size="9">'
                         f'{metric.upper()} {name} {level:g}</text>')
    for metric, key in (("psi", "psiScore"), ("js", "jsScore")):
        points = _points(series, key, start=start, span=span, top=top)
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[metric]}" '
                         'stroke-width="1.5"/>')
        for x, y, check in points:
            alert = check["alertTriggered"]
            title = html.escape(f"{check['checkDate']} {metric.upper()} {check[key]:.4f} "
                                f"({check['status']}, n={check['sampleSize']})")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4 if alert else 2}" '
                         f'fill="{"#d00" if alert else COLOURS[metric]}"><title>{title}'
                         '</title></circle>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">'
                 f'{html.escape(series[0]["checkDate"])}</text>'
                 f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
                 f'{html.escape(series[-1]["checkDate"])}</text></svg>')
    return "".join(parts)


def render_report(checks: list[dict[str, Any]], *, generated: dt.datetime) -> str:
    """Render checks (oldest first) as a page; returns the HTML text."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for check in checks:
        key = (check["policyId"], check["modelId"], check["label"], check["language"])
        groups[key].append(check)
    sections = []
    for (policy_id, model_id, label, language), series in sorted(groups.items()):
        alerts = sum(1 for check in series if check["alertTriggered"])
        heading = html.escape(f"{model_id} / {label} / {language}")
        sections.append(
            f'<section><h2>{heading}</h2><p>policy {html.escape(policy_id)}: '
            f"{len(series)} checks, {alerts} alerts</p>{_chart(series)}</section>"
        )
    body = "".join(sections) or "<p>No drift checks in this period.</p>"
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>q2q drift report</title><style>body{font-family:sans-serif;margin:2em}"
        "h2{font-size:1.05em;margin-bottom:0.2em}section{margin-bottom:1.5em}"
        ".legend span{margin-right:1.5em}</style></head><body>"
        "<h1>Drift report</h1>"
        f"<p>Generated {html.escape(generated.isoformat(timespec='seconds'))}. "
        '<span class="legend"><span style="color:#1f5fbf">&#9473; PSI</span>'
        '<span style="color:#c77c00">&#9473; JS divergence</span>'
        '<span style="color:#d00">&#9679; alert</span>dashed: thresholds</span></p>'
        f"{body}</body></html>\n"
    )


def write_report(engine: sa.Engine, path: Path, *, days: int, policy_id: str | None = None,
                 model_id: str | None = None,
                 now: dt.datetime | None = None) -> int:
    """Write the report for the last `days` days; return the number of charts."""
    now = now or dt.datetime.now(dt.UTC)
    with engine.connect() as connection:
        checks = drift_store.list_checks(
            connection, limit=MAX_CHECKS, policy_id=policy_id, model_id=model_id,
            since=now - dt.timedelta(days=days), newest_first=False,
        )
    path.write_text(render_report(checks, generated=now), encoding="utf-8")
    return len({(c["policyId"], c["modelId"], c["label"], c["language"]) for c in checks})
