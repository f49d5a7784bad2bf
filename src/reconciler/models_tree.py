"""Read a models repository's working tree: its taxonomy and its specs, as files on disk.

`q2q eval run` and `q2q validate --gates` evaluate and gate what a pull
request contains, which is the checkout in CI, not a commit the reconciler
has applied. Input: the repository root and the spec directory inside it.
Output: a `ModelsTree` with the label taxonomy from `registry.yaml`, the
valid specs and the problems of invalid files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.evaluation import EvaluatedModel
from registry_state.errors import InvalidSpecsError, Problem, Q2QError
from registry_state.loading import YAML_SUFFIXES, LoadedSpec, SourceFile, load_spec_file
from registry_state.repo_settings import RepositorySettings, parse_settings, settings_path
from registry_state.spec import spec_model_for
from registry_state.taxonomy import Taxonomy


class SpecNotFoundError(Q2QError):
    """No spec with the requested id is in the working tree."""


@dataclass(frozen=True)
class ModelsTree:
    root: Path
    taxonomy: Taxonomy
    specs: list[LoadedSpec]
    problems: list[Problem]

    def spec(self, model_id: str) -> LoadedSpec:
        for loaded in self.specs:
            if loaded.spec.id == model_id:
                return loaded
        known = ", ".join(sorted(loaded.spec.id for loaded in self.specs)) or "none"
        invalid = f"; {len(self.problems)} files have problems, run 'q2q validate'" \
            if self.problems else ""
        raise SpecNotFoundError(f"no spec with id {model_id!r} under {self.root}; "
                                f"known ids: {known}{invalid}")


def evaluated_model(loaded: LoadedSpec) -> EvaluatedModel:
    spec = loaded.spec
    return EvaluatedModel(
        model_id=spec.id, provider=spec.provider, model_name=spec.model,
        prompt_version=spec.prompt_version, thresholds=spec.threshold_values(),
        identity_hash=spec.config_hash(),
    )


def load_tree(repo_root: Path, spec_dir: str = "models") -> ModelsTree:
    """Load the taxonomy and every spec file under `repo_root/spec_dir`."""
    problems: list[Problem] = []
    settings_file = settings_path(spec_dir)
    settings_on_disk = repo_root / settings_file
    try:
        content = settings_on_disk.read_bytes() if settings_on_disk.is_file() else None
        settings = parse_settings(content, path=settings_file)
    except InvalidSpecsError as error:
        settings = RepositorySettings()
        problems += error.problems
    taxonomy = settings.label_taxonomy()
    spec_model = spec_model_for(taxonomy)

    directory = repo_root / spec_dir
    paths = sorted(
        path for path in directory.rglob("*")
        if path.suffix in YAML_SUFFIXES and path.is_file()
    ) if directory.is_dir() else []
    specs: list[LoadedSpec] = []
    for path in paths:
        relative = path.relative_to(repo_root).as_posix()
        result = load_spec_file(SourceFile(relative, path.read_bytes()), spec_model)
        specs += result.specs
        problems += result.problems
    return ModelsTree(root=repo_root, taxonomy=taxonomy, specs=specs, problems=problems)
