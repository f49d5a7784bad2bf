"""Generate a git repository of N spec files, one spec per file, in `models/`.

Each file has 19 lines in the format of examples/models/. Ids, providers,
model names, prompt versions and thresholds vary with a seeded random source, so
two runs with the same arguments produce byte-identical files. Exactly one spec
per provider is `active: true` (its spec with the highest index), so the
repository is valid and the one-active-per-provider rule holds.

    python -m bench.generate --specs 1000 /tmp/specs-1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
from pathlib import Path

PROVIDERS = {
    "claude": [
        "claude-3-sonnet-20240229",
        "claude-3-5-sonnet-20241022",
        "claude-3-5-haiku-20241022",
        "claude-3-7-sonnet-20250219",
    ],
    "openai": ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14"],
    "gemini": ["gemini-1.5-pro-002", "gemini-2.0-flash-001", "gemini-2.5-pro"],
}
VARIANTS = [
    "base",
    "multilingual",
    "enhanced",
    "strict",
    "lenient",
    "es",
    "fr",
    "uk",
    "ar",
    "pilot",
    "cohort",
]
PROBABILITY_LABELS = [
    "confidence_increase",
    "confidence_decrease",
    "belonging_increase",
    "belonging_decrease",
    "language_comfort_high",
    "language_comfort_low",
]
COUNT_LABELS = ["employability_min_signals", "risk_min_cues"]
GIT_IDENTITY = ["-c", "user.name=q2q bench", "-c", "user.email=bench@example.invalid"]
FIRST_DAY = dt.date(2024, 1, 1)


def git(repo: Path, *arguments: str) -> str:
    """Run git in `repo` with a fixed identity; return its standard output."""
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *arguments], cwd=repo, check=True, capture_output=True, text=True
    )
    return result.stdout


def spec_text(index: int, rng: random.Random, *, active: bool, provider: str) -> tuple[str, str]:
    """Return (id, file text) of spec number `index`."""
    model = rng.choice(PROVIDERS[provider])
    variant = rng.choice(VARIANTS)
    spec_id = f"q2q-{provider}-{variant}-{index:05d}"
    major, minor = rng.randint(1, 4), rng.randint(0, 9)
    day = FIRST_DAY + dt.timedelta(days=index % 540)
    pair = [round(rng.uniform(0.55, 0.95), 2) for _ in range(2)]
    values = {
        "confidence_increase": pair[0],
        "confidence_decrease": pair[0],
        "belonging_increase": pair[1],
        "belonging_decrease": pair[1],
        "language_comfort_high": round(rng.uniform(0.80, 0.95), 2),
        "language_comfort_low": round(rng.uniform(0.10, 0.30), 2),
        "employability_min_signals": rng.randint(1, 3),
        "risk_min_cues": rng.randint(1, 2),
    }
    effective = f'"{day.isoformat()}T00:00:00Z"' if index % 2 else day.isoformat()
    lines = [
        f"# Generated benchmark spec {index} ({provider}, {variant}).",
        f"# Owner: team-{rng.choice(['insights', 'evaluation', 'labelling'])}; review by PR.",
        f"id: {spec_id}",
        f"provider: {provider}",
        f"model: {model}",
        f"prompt_version: v{major}.{minor}",
        "thresholds:",
        *(f"  {name}: {values[name]:.2f}" for name in PROBABILITY_LABELS),
        *(f"  {name}: {values[name]}" for name in COUNT_LABELS),
        f"effective_from: {effective}",
        f"active: {'true' if active else 'false'}",
        f'description: "Q2Q {variant} classifier on {model}, prompt v{major}.{minor}, '
        f'benchmark spec {index}"',
        "# End of spec.",
        "",
    ]
    return spec_id, "\n".join(lines)


def generate(repo: Path, count: int, *, seed: int = 20250101) -> Path:
    """Create `repo` as a git repository with `count` specs committed on branch main."""
    rng = random.Random(seed)
    models = repo / "models"
    models.mkdir(parents=True, exist_ok=False)
    names = list(PROVIDERS)
    # The last spec of each provider (highest index) is the active one.
    last_of = {
        name: max(i for i in range(count) if i % len(names) == k)
        for k, name in enumerate(names)
        if k < count
    }
    for index in range(count):
        provider = names[index % len(names)]
        spec_id, text = spec_text(
            index, rng, active=last_of.get(provider) == index, provider=provider
        )
        (models / f"{spec_id}.yaml").write_text(text, encoding="utf-8")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "models")
    git(repo, "commit", "--quiet", "-m", f"Add {count} benchmark specs")
    return repo


def base_revision(repo: Path) -> str:
    """Return the generated commit, the first of the repository, to reset trials to."""
    return git(repo, "rev-list", "--max-parents=0", "HEAD").split()[0]


def edit_one(repo: Path, *, note: str) -> str:
    """Change one spec's description, commit it, and return the new revision."""
    paths = sorted((repo / "models").glob("*.yaml"))
    path = paths[len(paths) // 2]
    text = path.read_text(encoding="utf-8")
    lines = [
        f'description: "Edited for the benchmark: {note}"'
        if line.startswith("description:")
        else line
        for line in text.splitlines()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    git(repo, "commit", "--quiet", "-a", "-m", f"Edit one description ({note})")
    return git(repo, "rev-parse", "HEAD").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=1000)
    parser.add_argument("directory", type=Path)
    arguments = parser.parse_args()
    generate(arguments.directory, arguments.specs)
    print(f"{arguments.directory}: {arguments.specs} specs committed")


if __name__ == "__main__":
    main()
