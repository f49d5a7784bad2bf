"""The specs at a base revision, and the ids retired before it, for `q2q validate --base`.

Input: the spec directory in a git working tree, a base revision (the pull
request's target, such as origin/main) and the specs of the working tree.
Output: the identities each id is held to, for `check_specs(recorded=...)`:

- an id present at the base keeps its identity there;
- an id absent at the base but defined in an earlier commit reachable from it
  (a retired model) keeps its last identity from history.

History is searched with one `git log -G` over the spec directory for lines
that add or remove the new ids, so only the few blobs that mention them are
parsed, whatever the length of the history.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from policies.spec_rules import RecordedIdentity
from reconciler.desired import BlobCache, load_desired
from reconciler.git_source import GitSource
from registry_state.errors import GitSourceError, Problem
from registry_state.loading import YAML_SUFFIXES, LoadedSpec, SourceFile, load_spec_file
from registry_state.spec import SpecBase, spec_model_for
from registry_state.store import CommitInfo

logger = logging.getLogger(__name__)

_ZERO_SHA = "0" * 40
_COMMIT_MARK = "\x01"


@dataclass(frozen=True)
class RetiredSpec:
    """The last spec of an id that is absent at the base, and where history contains it."""

    loaded: LoadedSpec
    origin: str


@dataclass(frozen=True)
class BaseComparison:
    """The base revision's specs and the identities the working tree's specs are held to."""

    commit: CommitInfo
    spec_dir: str
    specs: list[LoadedSpec]
    problems: list[Problem]
    retired: dict[str, RetiredSpec]

    def recorded(self) -> dict[str, RecordedIdentity]:
        """Return the identity of every id at the base, and of every retired id found."""
        short = self.commit.revision[:12]
        recorded = {
            spec_id: RecordedIdentity(spec_id, found.loaded.spec.identity(), retired=True,
                                      origin=found.origin)
            for spec_id, found in self.retired.items()
        }
        for loaded in self.specs:
            recorded[loaded.spec.id] = RecordedIdentity(
                loaded.spec.id, loaded.spec.identity(), retired=False,
                origin=f"at base {short}, {loaded.path}:{loaded.line}",
            )
        return recorded


def compare_with_base(
    directory: Path, base: str, *, head_specs: Sequence[LoadedSpec]
) -> BaseComparison:
    """Load the specs of `directory` at `base` and the history of ids new since then."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitSourceError(
            f"'{directory}' is not inside a git repository, so --base cannot be read"
        ) from None
    try:
        root = Path(str(repo.working_tree_dir)).resolve()
        spec_dir = directory.resolve().relative_to(root).as_posix() or "."
        source = GitSource(str(root), branch="HEAD")
        try:
            commit = source.resolve(base)
        except GitSourceError:
            raise GitSourceError(
                f"base revision '{base}' not found in {root}; fetch it first (for example "
                "'git fetch origin main'; in GitHub Actions, check out with fetch-depth: 0)"
            ) from None
        desired = load_desired(source, commit, spec_dir=spec_dir, cache=BlobCache())
        source.close()

        base_ids = {loaded.spec.id for loaded in desired.specs}
        new_ids = {loaded.spec.id for loaded in head_specs} - base_ids
        spec_model = spec_model_for(desired.settings.label_taxonomy())
        retired = retired_specs(repo, base=commit.revision, spec_dir=spec_dir, ids=new_ids,
                                spec_model=spec_model)
    finally:
        repo.close()
    return BaseComparison(commit, spec_dir, desired.specs, desired.problems, retired)


def retired_specs(
    repo: git.Repo,
    *,
    base: str,
    spec_dir: str,
    ids: Collection[str],
    spec_model: type[SpecBase],
) -> dict[str, RetiredSpec]:
    """Return the latest spec in the history of `base` for each of `ids` defined there.

    Commits come newest first. Within one commit, the content after it is
    searched before the content it replaced, so the first spec found for an id
    is its last one.
    """
    if not ids:
        return {}
    # Ids hold only [a-z0-9.-], so escaping '.' is enough for a POSIX extended regex.
    alternatives = "|".join(sorted(spec_id.replace(".", r"\.") for spec_id in ids))
    pattern = f"(^|[^a-z0-9.-])({alternatives})([^a-z0-9.-]|$)"
    output = repo.git.log(
        f"--format={_COMMIT_MARK}%H", "--raw", "--no-abbrev", "--no-renames", "--no-textconv",
        f"-G{pattern}", base, "--", spec_dir,
    )

    remaining = set(ids)
    found: dict[str, RetiredSpec] = {}
    seen: set[str] = set()
    for commit, changes in _parse_log(output):
        blobs = [(new, path, False) for _old, new, path in changes]
        blobs += [(old, path, True) for old, _new, path in changes]
        for sha, path, before_commit in blobs:
            if sha == _ZERO_SHA or sha in seen or not path.endswith(YAML_SUFFIXES):
                continue
            seen.add(sha)
            content: bytes = repo.odb.stream(bytes.fromhex(sha)).read()
            if not any(spec_id.encode() in content for spec_id in remaining):
                continue
            # NOTE: a blob that no longer validates (for example under an older
            # taxonomy) is skipped, so ids defined only there are not checked.
            result = load_spec_file(SourceFile(path, content, sha), spec_model)
            for loaded in result.specs:
                if loaded.spec.id not in remaining:
                    continue
                remaining.discard(loaded.spec.id)
                where = f"{path}:{loaded.line}"
                origin = (f"removed in {commit[:12]}, last at {where}" if before_commit
                          else f"at {commit[:12]}, {where}")
                found[loaded.spec.id] = RetiredSpec(loaded, origin)
            if not remaining:
                return found
    logger.debug("Searched history of %s for %d new ids; %d found", spec_dir, len(ids),
                 len(found))
    return found


def _parse_log(output: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Split `git log --raw` output into (commit, [(old blob, new blob, path)]) records."""
    commits: list[tuple[str, list[tuple[str, str, str]]]] = []
    for line in output.splitlines():
        if line.startswith(_COMMIT_MARK):
            commits.append((line[1:].strip(), []))
        elif line.startswith(":") and commits:
            meta, _, path = line.partition("\t")
            fields = meta.split()
            commits[-1][1].append((fields[2], fields[3], path))
    return commits
