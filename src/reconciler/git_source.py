"""Read desired state from a commit of a git repository, never from a working tree.

`GitSource` opens a local repository in place, or mirrors a URL into a cache
directory and fetches it before each resolve. It resolves a branch to a commit
and lists and reads the blobs under a path of that commit's tree, so uncommitted
edits are never applied. The reconcile pass and `q2q plan` call it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import git

from registry_state.errors import GitSourceError
from registry_state.store import CommitInfo

logger = logging.getLogger(__name__)

_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/@:]+@[^/:]+:)", re.IGNORECASE)


@dataclass(frozen=True)
class TreeEntry:
    path: str
    blob_sha: str


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "q2q" / "repositories"


class GitSource:
    """A branch of a repository that desired state is read from."""

    def __init__(self, repo: str, *, branch: str | None = None, cache_dir: Path | None = None):
        self.location = repo
        self.is_remote = bool(_URL.match(repo))
        self._requested_branch = branch
        self._cache_dir = cache_dir or default_cache_dir()
        self._repo = self._open()
        self.branch = branch or self._default_branch()

    def fork(self) -> GitSource:
        """Return another handle on the same local repository or mirror, for another thread.

        GitPython's object database talks to one `git cat-file` process, which
        two threads must not share. The fork never clones or fetches.
        """
        other = object.__new__(GitSource)
        other.location = self.location
        other.is_remote = self.is_remote
        other._requested_branch = self._requested_branch
        other._cache_dir = self._cache_dir
        other._repo = git.Repo(self._repo.git_dir if self._repo.bare else
                               self._repo.working_tree_dir)
        other.branch = self.branch
        return other

    def describe(self) -> str:
        return f"{self.location}@{self.branch}"

    @property
    def repository(self) -> git.Repo:
        """The local repository, or the mirror of a URL, that commits are read from."""
        return self._repo

    def _open(self) -> git.Repo:
        if not self.is_remote:
            try:
                return git.Repo(self.location, search_parent_directories=False)
            except git.NoSuchPathError:
                raise GitSourceError(f"repository {self.location!r} does not exist") from None
            except git.InvalidGitRepositoryError:
                raise GitSourceError(
                    f"{self.location!r} is not a git repository; pass the directory that "
                    "contains .git, or a URL, with --repo"
                ) from None
        key = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        mirror = self._cache_dir / key
        try:
            if (mirror / "HEAD").exists():
                repo = git.Repo(mirror)
                self._fetch(repo)
                return repo
            mirror.parent.mkdir(parents=True, exist_ok=True)
            logger.info("Cloning %s into %s", self.location, mirror)
            return git.Repo.clone_from(self.location, mirror, mirror=True)
        except git.GitCommandError as error:
            raise GitSourceError(
                f"cannot clone {self.location!r}: {_stderr(error)}"
            ) from None

    def _fetch(self, repo: git.Repo) -> None:
        try:
            repo.git.fetch("--prune", "origin")
        except git.GitCommandError as error:
            raise GitSourceError(f"cannot fetch {self.location!r}: {_stderr(error)}") from None

    def _default_branch(self) -> str:
        repo = self._repo
        try:
            if not repo.bare and not repo.head.is_detached:
                return str(repo.active_branch.name)
            return str(repo.git.symbolic_ref("--short", "HEAD"))
        except (TypeError, git.GitCommandError):
            raise GitSourceError(
                f"cannot tell the default branch of {self.location!r}; pass --branch"
            ) from None

    def refresh(self) -> bool:
        """Fetch a remote repository if its branch tip moved; return True if it fetched.

        The tip is checked with `git ls-remote` first, so an idle pass transfers
        no objects. A local repository is read in place and never fetched.
        """
        if not self.is_remote:
            return False
        try:
            output = str(self._repo.git.ls_remote("origin", f"refs/heads/{self.branch}"))
        except git.GitCommandError as error:
            raise GitSourceError(f"cannot reach {self.location!r}: {_stderr(error)}") from None
        remote_tip = output.split()[0] if output.strip() else None
        try:
            local_tip = self._repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{self.branch}")
        except git.GitCommandError:
            local_tip = None
        if remote_tip is not None and remote_tip == local_tip:
            return False
        self._fetch(self._repo)
        return True

    def resolve(self, revision: str | None = None) -> CommitInfo:
        """Return the commit at the tip of the branch, or at `revision` when given."""
        ref = revision or self.branch
        try:
            commit = self._repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError):
            raise GitSourceError(
                f"revision {ref!r} not found in {self.location!r}; check --branch "
                f"(branches: {', '.join(self.branches()) or 'none'})"
            ) from None
        subject = str(commit.message).strip().splitlines()[0] if commit.message else ""
        author = f"{commit.author.name} <{commit.author.email}>"
        return CommitInfo(revision=commit.hexsha, author=author, subject=subject)

    def branches(self) -> list[str]:
        return sorted(head.name for head in self._repo.heads)

    def contains(self, revision: str) -> bool:
        """Return True if `revision` is an ancestor of (or equal to) the branch tip."""
        try:
            self._repo.git.merge_base("--is-ancestor", revision, self.branch)
            return True
        except git.GitCommandError:
            return False

    def list_tree(self, revision: str, path: str) -> list[TreeEntry]:
        """List the blobs under `path` at `revision`, recursively, sorted by path."""
        try:
            output = self._repo.git.ls_tree("-r", "-z", "--full-tree", revision, "--", path)
        except git.GitCommandError as error:
            raise GitSourceError(f"cannot list {path!r} at {revision[:12]}: {_stderr(error)}") \
                from None
        entries = []
        for record in output.split("\0"):
            if not record:
                continue
            meta, _, name = record.partition("\t")
            _mode, kind, sha = meta.split()
            if kind == "blob":
                entries.append(TreeEntry(name, sha))
        return sorted(entries, key=lambda entry: entry.path)

    def has_tree(self, revision: str, path: str) -> bool:
        try:
            self._repo.git.cat_file("-e", f"{revision}:{path.strip('/')}")
            return True
        except git.GitCommandError:
            return False

    def read_blob(self, blob_sha: str) -> bytes:
        data: bytes = self._repo.odb.stream(bytes.fromhex(blob_sha)).read()
        return data

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        return {sha: self.read_blob(sha) for sha in shas}

    def read_file(self, revision: str, path: str) -> bytes | None:
        """Return a file's content at `revision`, or None when it does not exist."""
        entries = [e for e in self.list_tree(revision, path) if e.path == path]
        return self.read_blob(entries[0].blob_sha) if entries else None

    def close(self) -> None:
        self._repo.close()


def _stderr(error: git.GitCommandError) -> str:
    text = str(error.stderr or error).strip()
    text = text.removeprefix("stderr:").strip().strip("'").strip()
    return text.splitlines()[-1] if text else str(error)
