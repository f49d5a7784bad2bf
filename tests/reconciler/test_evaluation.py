"""The evaluation harness on a real database, the real anthropic SDK and a fake provider."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.evaluation import (
    EvaluatedModel,
    EvaluationError,
    EvaluationRequest,
    run_evaluation,
)
from reconciler.providers import CallSettings
from reconciler.providers.anthropic_adapter import AnthropicAdapter
from registry_state import datasets, eval_store
from registry_state.prompts import PromptTemplate
from registry_state.taxonomy import DEFAULT_TAXONOMY, Taxonomy, ThresholdKind
from support.eval_fixtures import (
    COUNT_LABELS,
    LABELS,
    PROBABILITY_LABELS,
    PROMPT,
    ROWS,
    dataset_csv,
)
from support.fake_providers import FakeProvider, Recorded, Reply, keyword_provider
from support.provider_tests import DUMMY_KEYS

MODEL = EvaluatedModel(
    model_id="q2q-claude-v3", provider="claude", model_name="claude-test",
    prompt_version="v3.0",
    thresholds={name: 0.8 if name in PROBABILITY_LABELS else 1 for name in LABELS},
    identity_hash="0" * 64,
)
DELAY_S = 0.05
TEMPLATE = PromptTemplate(path="prompts/v3.0.txt", content=PROMPT.encode())


@pytest.fixture(autouse=True)
def dummy_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DUMMY_KEYS.items():
        monkeypatch.setenv(name, value)


class InFlight:
    """Wrap the keyword provider to count the requests the server holds at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = 0
        self.peak = 0
        self.inner = keyword_provider(probability=PROBABILITY_LABELS, count=COUNT_LABELS)

    def __call__(self, request: Recorded) -> Reply:
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        # The server waits DELAY_S before it sends the reply; the count drops then.
        threading.Timer(DELAY_S, self._done).start()
        return Reply(self.inner(request).body, delay_s=DELAY_S)

    def _done(self) -> None:
        with self.lock:
            self.current -= 1


@pytest.fixture
def in_flight() -> InFlight:
    return InFlight()


@pytest.fixture
def server(in_flight: InFlight) -> Iterator[FakeProvider]:
    fake = FakeProvider(in_flight)
    with fake.running():
        yield fake


def store(engine: sa.Engine, rows: list[tuple[str, str, set[str]]]) -> datasets.DatasetRecord:
    parsed = datasets.parse_dataset(dataset_csv(rows).encode(), source="data.csv",
                                    taxonomy=DEFAULT_TAXONOMY)
    with engine.begin() as connection:
        record, _ = datasets.store_dataset(connection, parsed, name="v3",
                                           now=dt.datetime(2026, 1, 10, tzinfo=dt.UTC))
    return record


def evaluate(engine: sa.Engine, server: FakeProvider, dataset: datasets.DatasetRecord,
             **settings: Any) -> Any:
    adapter = AnthropicAdapter(taxonomy=DEFAULT_TAXONOMY, base_url=server.url,
                               settings=CallSettings(**settings))
    request = EvaluationRequest(model=MODEL, prompt=TEMPLATE, dataset_id=dataset.id,
                                taxonomy=DEFAULT_TAXONOMY)
    return run_evaluation(engine, request, adapter=adapter)


def test_concurrency_limit_holds(engine: sa.Engine, server: FakeProvider,
                                 in_flight: InFlight) -> None:
    rows = [(f"row {i} #confidence_increase", "en", {"confidence_increase"})
            for i in range(24)]
    outcome = evaluate(engine, server, store(engine, rows), concurrency=3)
    assert outcome.provider_calls == 24
    assert in_flight.peak <= 3


def test_identical_prompts_sent_once(engine: sa.Engine, server: FakeProvider) -> None:
    rows = [("same text #confidence_increase", "en", {"confidence_increase"})] * 5
    outcome = evaluate(engine, server, store(engine, rows))
    assert outcome.provider_calls == 1
    assert outcome.metrics["slices"]["all"]["rows"] == 5


def test_run_is_stored_with_results(engine: sa.Engine, server: FakeProvider) -> None:
    outcome = evaluate(engine, server, store(engine, ROWS))
    with engine.connect() as connection:
        document = eval_store.run_json(connection, outcome.run_id)
    assert document["status"] == "completed"
    assert document["hashes"]["dataset"] == outcome.dataset.content_hash
    assert document["hashes"]["prompt"] == TEMPLATE.sha256
    f1 = {(r["language"], r["label"]): r["f1"] for r in document["results"]}
    assert f1[("all", "confidence_increase")] == pytest.approx(2 * 0.75 / 1.75)
    assert f1[("en", "language_comfort_high")] is None


def test_taxonomy_mismatch_is_rejected(engine: sa.Engine, server: FakeProvider) -> None:
    dataset = store(engine, ROWS)
    other = Taxonomy(thresholds=(("confidence_increase", ThresholdKind.PROBABILITY),))
    adapter = AnthropicAdapter(taxonomy=other, base_url=server.url)
    request = EvaluationRequest(model=MODEL, prompt=TEMPLATE, dataset_id=dataset.id,
                                taxonomy=other)
    with pytest.raises(EvaluationError, match="but the repository taxonomy is "
                                              "confidence_increase; upload the dataset again"):
        run_evaluation(engine, request, adapter=adapter)
    assert server.requests == []


def test_failed_run_is_recorded(engine: sa.Engine, server: FakeProvider,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = store(engine, ROWS)

    def broken_write(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("cache table is locked")

    monkeypatch.setattr(eval_store, "write_cached", broken_write)
    with pytest.raises(RuntimeError):
        evaluate(engine, server, dataset)
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT status, error FROM eval_runs")).all()
    assert [tuple(run) for run in runs] == [("failed", "cache table is locked")]
