"""Read a prompt template from a commit of the models repository, for the HTTP API.

`q2q eval run` reads the working tree instead, through
`registry_state.prompts.find_prompt_file`.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.git_source import GitSource
from registry_state.prompts import PROMPT_DIR, PromptTemplate, choose_prompt_file


def read_prompt_at(source: GitSource, revision: str, prompt_version: str) -> PromptTemplate:
    """Return the template for `prompt_version` as committed at `revision`."""
    entries = source.list_tree(revision, PROMPT_DIR) if source.has_tree(revision, PROMPT_DIR) \
        else []
    by_name = {Path(entry.path).name: entry for entry in entries
               if Path(entry.path).parent.as_posix() == PROMPT_DIR}
    where = f"{PROMPT_DIR}/ at {revision[:12]}"
    name = choose_prompt_file(prompt_version, list(by_name), where=where)
    entry = by_name[name]
    template = PromptTemplate(path=entry.path, content=source.read_blob(entry.blob_sha))
    template.check()
    return template
