"""Serve the test suite's fake provider on 127.0.0.1 in its own process, for benchmarks.

Prints the base URL on the first line of stdout, then serves until stdin
closes, so a parent process stops it by closing the pipe. Running it apart
from the client keeps the server's work off the client's interpreter lock,
as with a real provider.

    python -m bench.fake_provider_server --latency-ms 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.eval_fixtures import COUNT_LABELS, PROBABILITY_LABELS
from support.fake_providers import FakeProvider, keyword_provider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    arguments = parser.parse_args()
    fake = FakeProvider(keyword_provider(probability=PROBABILITY_LABELS, count=COUNT_LABELS,
                                         delay_s=arguments.latency_ms / 1000))
    with fake.running():
        print(fake.url, flush=True)
        sys.stdin.read()
    print(len(fake.requests), flush=True)


if __name__ == "__main__":
    main()
