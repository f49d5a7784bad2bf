"""JSON Schemas for spec files and registry.yaml, so editors validate and complete YAML.

Built from the pydantic models that the loader validates with, then adapted
for editors and JSON Schema validators. The schemas use draft-07, because the
yaml-language-server README states support for "JSON Schema 7 and below", and
check-jsonschema accepts it too (the tests run it):

- A spec file contains one spec or a `models:` list of specs. The schema picks
  the branch the same way the loader does (a `models` key and no `id`).
- `effective_from` takes a date or a datetime with a UTC offset. The pattern
  accepts the ISO 8601 extended forms only (2025-12-01, 2025-12-01T00:00:00Z,
  2025-12-01 06:30+01:00); the loader also takes rarer spellings, such as the
  basic form 20251201T000000Z, that the schema marks as invalid.
- pydantic (2.14 here) writes the bounds of a union-typed field, such as a
  probability threshold that may be a float or an int, as `ge` and `le`. JSON
  Schema ignores those keys, so they become `minimum` and `maximum`.

`q2q schema` prints these; nothing here does I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from registry_state.repo_settings import RepositorySettings
from registry_state.spec import spec_model_for
from registry_state.taxonomy import Taxonomy, ThresholdKind

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)

SPEC_FIELD_DESCRIPTIONS = {
    "id": "Unique id of this configuration. Never reused: a change of provider, model, "
    "prompt_version or thresholds needs a new id ('q2q new NEW_ID --from ID').",
    "provider": "LLM provider that runs the classifier.",
    "model": "The provider's model name, such as claude-3-5-sonnet-20241022.",
    "prompt_version": "Version of the prompt template, such as v2.0 (prompts/v2.0.*).",
    "thresholds": "Per-label thresholds: a probability in [0, 1] above which a label is "
    "assigned, or a minimum count of signals or cues.",
    "effective_from": "Instant from which the spec may be in effect: a date (midnight UTC) "
    "or an ISO 8601 datetime with a UTC offset, such as 2025-12-01T00:00:00Z.",
    "active": "Whether the spec is meant to be active. Among a provider's active specs, the "
    "one with the latest effective_from not in the future is in effect; a future "
    "effective_from schedules a cutover.",
    "description": "Free text for people.",
}

_BOUND_KEYWORDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum",
                   "lt": "exclusiveMaximum"}


def spec_file_schema(taxonomy: Taxonomy) -> dict[str, Any]:
    """Return the schema of a spec file: one spec, or a mapping with a `models:` list."""
    spec = _json_bounds(spec_model_for(taxonomy).model_json_schema())
    definitions = spec.pop("$defs", {})
    for name, description in SPEC_FIELD_DESCRIPTIONS.items():
        spec["properties"][name]["description"] = description
    spec["properties"]["effective_from"] = {
        "description": SPEC_FIELD_DESCRIPTIONS["effective_from"],
        "type": "string",
        "anyOf": [{"pattern": DATE_PATTERN}, {"pattern": DATETIME_PATTERN}],
    }
    thresholds = definitions["Thresholds"]
    for name, kind in taxonomy.thresholds:
        unit = "a probability in [0, 1]" if kind is ThresholdKind.PROBABILITY else \
            "a count of at least 0"
        thresholds["properties"][name]["description"] = f"Threshold for {name}: {unit}."
    definitions["ModelSpec"] = spec

    models_file = {
        "type": "object",
        "description": "A list of specs, as in the governance guide's models.yaml.",
        "properties": {
            "models": {"type": "array", "items": {"$ref": "#/definitions/ModelSpec"}},
        },
        "required": ["models"],
        "additionalProperties": False,
    }
    return _with_definitions_refs({
        "$schema": DRAFT_07,
        "title": "q2q-registry spec file",
        "description": "One model spec, or a mapping with a 'models:' list of specs.",
        "definitions": definitions,
        "if": {"type": "object", "required": ["models"], "not": {"required": ["id"]}},
        "then": models_file,
        "else": {"$ref": "#/definitions/ModelSpec"},
    })


def settings_schema() -> dict[str, Any]:
    """Return the schema of registry.yaml: the label taxonomy and reconciler settings."""
    schema = _json_bounds(RepositorySettings.model_json_schema())
    definitions = schema.pop("$defs", {})
    return _with_definitions_refs({
        "$schema": DRAFT_07,
        "description": "Settings of a models repository: the label taxonomy and the "
        "reconciler's mass-retire guard.",
        **schema,
        "title": "q2q-registry registry.yaml",
        "definitions": definitions,
    })


def _json_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `schema` with pydantic's `ge`/`le`/`gt`/`lt` as JSON Schema bounds."""
    result = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for short, keyword in _BOUND_KEYWORDS.items():
                if short in node and isinstance(node[short], int | float):
                    node[keyword] = node.pop(short)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result


def _with_definitions_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Point `$ref`s at draft-07's `definitions` instead of pydantic's `$defs`."""

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: value.replace("#/$defs/", "#/definitions/")
                if key == "$ref" and isinstance(value, str) else visit(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [visit(value) for value in node]
        return node

    result: dict[str, Any] = visit(schema)
    return result
