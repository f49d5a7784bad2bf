"""Load the desired state of one commit, parsing only blobs not seen before.

Input: a `GitSource`, a commit and the spec directory. Output: a `DesiredState`
with the commit's valid specs, the problems of its files and its repository
settings. `BlobCache` keeps each file's parse result keyed by blob sha (and
taxonomy), so a pass after a one-file change parses one file. The reconcile
pass calls `load_desired`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from reconciler.git_source import GitSource
from registry_state.errors import InvalidSpecsError, Problem
from registry_state.loading import YAML_SUFFIXES, FileResult, LoadedSpec, SourceFile, load_spec_file
from registry_state.repo_settings import RepositorySettings, parse_settings, settings_path
from registry_state.spec import spec_model_for
from registry_state.store import CommitInfo
from registry_state.taxonomy import Taxonomy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DesiredState:
    commit: CommitInfo
    specs: list[LoadedSpec]
    problems: list[Problem]
    settings: RepositorySettings
    files_parsed: int = 0
    spec_dir_exists: bool = True


@dataclass
class BlobCache:
    """Parse results by (blob sha, path, taxonomy), trimmed to the latest commit's blobs."""

    entries: dict[tuple[str, str, Taxonomy], FileResult] = field(default_factory=dict)

    def retain(self, keys: set[tuple[str, str, Taxonomy]]) -> None:
        for key in self.entries.keys() - keys:
            del self.entries[key]


def load_desired(
    source: GitSource, commit: CommitInfo, *, spec_dir: str, cache: BlobCache
) -> DesiredState:
    """Read, parse and validate (file by file) the specs of `commit`."""
    revision = commit.revision
    problems: list[Problem] = []

    settings_file = settings_path(spec_dir)
    try:
        settings = parse_settings(source.read_file(revision, settings_file), path=settings_file)
    except InvalidSpecsError as error:
        settings = RepositorySettings()
        problems += error.problems
    taxonomy = settings.label_taxonomy()
    spec_model = spec_model_for(taxonomy)

    if not source.has_tree(revision, spec_dir):
        # Git keeps no empty directories, so a commit that deletes every spec also
        # deletes the directory; the reconcile pass decides whether that is an error.
        return DesiredState(commit, [], problems, settings, spec_dir_exists=False)

    entries = [
        entry for entry in source.list_tree(revision, spec_dir)
        if entry.path.endswith(YAML_SUFFIXES)
    ]
    keys = {(entry.blob_sha, entry.path, taxonomy) for entry in entries}
    specs: list[LoadedSpec] = []
    parsed = 0
    for entry in entries:
        key = (entry.blob_sha, entry.path, taxonomy)
        result = cache.entries.get(key)
        if result is None:
            content = source.read_blob(entry.blob_sha)
            result = load_spec_file(SourceFile(entry.path, content, entry.blob_sha), spec_model)
            cache.entries[key] = result
            parsed += 1
        specs += result.specs
        problems += result.problems
    cache.retain(keys)
    logger.debug("Loaded %d specs from %d files at %s (%d parsed)",
                 len(specs), len(entries), revision[:12], parsed)
    return DesiredState(commit, specs, problems, settings, files_parsed=parsed)
