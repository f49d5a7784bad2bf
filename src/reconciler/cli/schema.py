"""`q2q schema`: print the JSON Schemas of spec files and registry.yaml.

Editors that run yaml-language-server validate and complete YAML against a
schema named in a modeline, and CI can check files with check-jsonschema. The
spec schema follows the label taxonomy in registry.yaml beside the spec
directory, so it is generated per repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from reconciler.authoring.json_schema import settings_schema, spec_file_schema
from reconciler.authoring.workspace import display_path
from registry_state.repo_settings import SETTINGS_FILE, parse_settings

SCHEMA_FILES = {"spec": "spec.schema.json", "registry": "registry.schema.json"}


def _schemas(spec_dir: Path) -> dict[str, dict[str, Any]]:
    settings_file = spec_dir.resolve().parent / SETTINGS_FILE
    content = settings_file.read_bytes() if settings_file.is_file() else None
    settings = parse_settings(content, path=display_path(settings_file))
    return {
        "spec": spec_file_schema(settings.label_taxonomy()),
        "registry": settings_schema(),
    }


def _dumped(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


@click.command()
@click.argument("kind", type=click.Choice(sorted(SCHEMA_FILES)), default="spec")
@click.option(
    "--path",
    "spec_dir",
    envvar="Q2Q_PATH",
    default="models",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Spec directory; the taxonomy is read from registry.yaml beside it when present "
    "[env: Q2Q_PATH].",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every schema into this directory (spec.schema.json, registry.schema.json) "
    "instead of printing KIND.",
)
def schema(kind: str, spec_dir: Path, output_dir: Path | None) -> None:
    """Print the JSON Schema of KIND: spec (spec files) or registry (registry.yaml).

    Commit the schemas, for example with 'q2q schema --output-dir schemas', and
    name one in the first line of a YAML file so that editors with
    yaml-language-server check it as you type:

        # yaml-language-server: $schema=../schemas/spec.schema.json

    Regenerate the spec schema after changing the taxonomy in registry.yaml.
    """
    schemas = _schemas(spec_dir)
    if output_dir is None:
        click.echo(_dumped(schemas[kind]), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, file_name in SCHEMA_FILES.items():
        target = output_dir / file_name
        target.write_text(_dumped(schemas[name]))
        click.echo(f"Wrote the {name} schema to {display_path(target)}")
