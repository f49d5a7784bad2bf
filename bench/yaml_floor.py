"""The floor for `q2q validate`: read every spec file and parse it with libyaml.

Reads the same files as `q2q validate DIR` (every *.yaml and *.yml under DIR,
sorted) and parses each with `yaml.load(text, Loader=yaml.CSafeLoader)`, with
no schema validation. Run as its own process so that it pays for interpreter
start-up just as the `q2q` command does.

    python -m bench.yaml_floor DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def parse_all(directory: Path) -> int:
    paths = sorted(
        path for path in directory.rglob("*") if path.suffix in (".yaml", ".yml") and path.is_file()
    )
    for path in paths:
        yaml.load(path.read_bytes().decode("utf-8"), Loader=yaml.CSafeLoader)
    return len(paths)


def main() -> None:
    count = parse_all(Path(sys.argv[1]))
    print(f"{count} files parsed", file=sys.stderr)


if __name__ == "__main__":
    main()
