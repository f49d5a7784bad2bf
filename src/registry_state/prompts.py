"""Prompt templates: `prompts/<prompt_version>.*` in the models repository, rendered per row.

A template is UTF-8 text with three placeholders, written `{{ text }}`,
`{{ language }}` and `{{ labels }}`. `labels` renders the taxonomy as one line
per label, saying whether the model returns a confidence or a list of signals.
Any other `{{ ... }}` is an error naming the file and line, so a typo never
reaches a provider. Single braces are left alone, so JSON examples need no
escaping.

`find_prompt_file` reads the template from a working tree (for `q2q eval run`
and `q2q validate --gates`); `reconciler.prompts.read_prompt_at` reads it from
a commit (for the HTTP API). The SHA-256 of the file's bytes goes into
evaluation reports.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from registry_state.errors import Q2QError
from registry_state.taxonomy import Taxonomy, ThresholdKind

PROMPT_DIR = "prompts"
PLACEHOLDERS = ("text", "language", "labels")
_PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


class PromptError(Q2QError):
    """A prompt template is missing, ambiguous or invalid."""


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt file's path, bytes and text."""

    path: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def text(self) -> str:
        try:
            return self.content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise PromptError(f"{self.path}: byte {error.start} is not valid UTF-8; "
                              "save the prompt file as UTF-8") from None

    def check(self) -> None:
        """Raise `PromptError` for an unknown placeholder, naming its line."""
        text = self.text
        for match in _PLACEHOLDER.finditer(text):
            if match.group(1) not in PLACEHOLDERS:
                line = text.count("\n", 0, match.start()) + 1
                raise PromptError(
                    f"{self.path}:{line}: unknown placeholder {match.group(0)!r}; allowed: "
                    + ", ".join("{{ " + name + " }}" for name in PLACEHOLDERS)
                )

    def render(self, *, text: str, language: str, taxonomy: Taxonomy) -> str:
        values = {"text": text, "language": language, "labels": describe_labels(taxonomy)}
        return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)),
                                self.text)


def describe_labels(taxonomy: Taxonomy) -> str:
    """Render the label taxonomy for a prompt, one line per label."""
    lines = []
    for name, kind in taxonomy.thresholds:
        if kind is ThresholdKind.PROBABILITY:
            lines.append(f"- {name}: a confidence from 0 to 1 that the label applies")
        else:
            lines.append(f"- {name}: the list of distinct signals or cues found in the text")
    return "\n".join(lines)


def choose_prompt_file(prompt_version: str, names: list[str], *, where: str) -> str:
    matches = sorted(name for name in names if Path(name).stem == prompt_version)
    if not matches:
        raise PromptError(
            f"no prompt file for prompt_version {prompt_version} in {where}; add "
            f"{PROMPT_DIR}/{prompt_version}.txt (or .md) with the {{{{ text }}}} placeholder"
        )
    if len(matches) > 1:
        raise PromptError(f"more than one prompt file for prompt_version {prompt_version}: "
                          f"{', '.join(matches)}; keep one")
    return matches[0]


def find_prompt_file(repo_root: Path, prompt_version: str) -> PromptTemplate:
    """Return the template for `prompt_version` from the working tree at `repo_root`."""
    directory = repo_root / PROMPT_DIR
    names = [path.name for path in directory.iterdir() if path.is_file()] \
        if directory.is_dir() else []
    name = choose_prompt_file(prompt_version, names, where=f"{directory}")
    path = directory / name
    template = PromptTemplate(path=f"{PROMPT_DIR}/{name}", content=path.read_bytes())
    template.check()
    return template
