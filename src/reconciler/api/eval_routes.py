"""Routes under /q2q/eval: the governance guide's upload, run and results endpoints.

- `POST /q2q/eval/upload` (multipart: `file`, `name`, optional `encoding`)
  stores a dataset whole, or returns 400 with the bad lines.
- `POST /q2q/eval/run` (JSON: `datasetId`, `modelId`, optional `noCache`)
  evaluates a recorded model on a stored dataset in a background thread and
  returns 202 with the `runId`. The prompt template and the label taxonomy
  are read from the last applied revision of the models repository.
- `GET /q2q/eval/results/{runId}` returns the run, its status and metrics.

Mutating endpoints need the API token when one is set.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from reconciler.api.app import ApiError, require_token
from reconciler.daemon import Daemon
from reconciler.evaluation import EvaluatedModel, EvaluationRequest, run_evaluation
from reconciler.prompts import read_prompt_at
from reconciler.providers import CallSettings, adapter_for
from registry_state import datasets, eval_store, queries, store
from registry_state.repo_settings import parse_settings, settings_path
from registry_state.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/q2q/eval", tags=["evaluation"])

MAX_BYTES_VARIABLE = "Q2Q_EVAL_MAX_BYTES"
START_WAIT_S = 30.0


def _daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


def _max_bytes() -> int:
    value = os.environ.get(MAX_BYTES_VARIABLE)
    return int(value) if value and value.isdigit() else datasets.DEFAULT_MAX_BYTES


def _repository_revision(daemon: Daemon) -> str:
    """Return the last applied revision, or the branch tip before the first pass."""
    with daemon.reader.connect() as connection:
        applied = store.read_status(connection).last_applied_revision
    return applied or daemon.reconciler.source.resolve().revision


def _taxonomy_at(daemon: Daemon, revision: str) -> Taxonomy:
    path = settings_path(daemon.reconciler.options.spec_dir)
    content = daemon.reconciler.source.read_file(revision, path)
    return parse_settings(content, path=path).label_taxonomy()


@router.post("/upload", status_code=201, dependencies=[Depends(require_token)])
async def upload_dataset(
    request: Request,
    file: Annotated[UploadFile, File()],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    encoding: Annotated[str | None, Form(max_length=40)] = None,
) -> JSONResponse:
    """Store an uploaded CSV dataset; 400 names each bad line and nothing is stored."""
    daemon = _daemon(request)
    limit = _max_bytes()
    content = await file.read(limit + 1)
    source = file.filename or "upload.csv"
    taxonomy = _taxonomy_at(daemon, _repository_revision(daemon))
    try:
        parsed = datasets.parse_dataset(content, source=source, taxonomy=taxonomy,
                                        encoding=encoding, max_bytes=limit)
    except datasets.DatasetError as error:
        raise ApiError(400, "Invalid dataset", str(error), problems=error.problems) from None
    with daemon.engine.begin() as connection:
        record, created = datasets.store_dataset(connection, parsed, name=name,
                                                 now=dt.datetime.now(dt.UTC))
    return JSONResponse({"success": True, "created": created, "datasetId": str(record.id),
                         "dataset": record.as_json()}, status_code=201 if created else 200)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dataset_id: str = Field(alias="datasetId", min_length=1, max_length=200)
    model_id: str = Field(alias="modelId", min_length=1, max_length=100)
    no_cache: bool = Field(default=False, alias="noCache")


@router.post("/run", status_code=202, dependencies=[Depends(require_token)])
def start_run(request: Request, body: RunRequest) -> JSONResponse:
    """Start evaluating a recorded model on a stored dataset; poll the results URL."""
    daemon = _daemon(request)
    with daemon.reader.connect() as connection:
        try:
            dataset = datasets.find_dataset(connection, body.dataset_id)
        except datasets.DatasetNotFoundError as error:
            raise ApiError(404, "Dataset not found", str(error)) from None
        row = queries.get_model(connection, body.model_id)
    revision = _repository_revision(daemon)
    taxonomy = _taxonomy_at(daemon, revision)
    if list(dataset.labels) != list(taxonomy.names):
        raise ApiError(400, "Dataset does not match the taxonomy",
                       f"dataset {dataset.name} has the labels {', '.join(dataset.labels)} but "
                       f"the repository taxonomy is {', '.join(taxonomy.names)}; upload it again")
    prompt = read_prompt_at(daemon.reconciler.source, revision, row["promptVersion"])
    adapter_class = adapter_for(row["provider"])
    adapter_class.check_api_key(os.environ)
    evaluation = EvaluationRequest(
        model=EvaluatedModel(
            model_id=row["modelId"], provider=row["provider"], model_name=row["modelName"],
            prompt_version=row["promptVersion"], thresholds=row["thresholds"],
            identity_hash=row["configHash"] or "",
        ),
        prompt=prompt, dataset_id=dataset.id, taxonomy=taxonomy, use_cache=not body.no_cache,
    )
    started = threading.Event()
    thread = threading.Thread(
        target=_run_in_background, args=(daemon.engine, evaluation, adapter_class, started),
        name=f"eval-{evaluation.run_id}", daemon=True,
    )
    thread.start()
    # Wait until the run row exists, so the results URL finds the run at once.
    started.wait(START_WAIT_S)
    return JSONResponse(
        {"success": True, "runId": str(evaluation.run_id), "status": "running",
         "resultsUrl": f"/q2q/eval/results/{evaluation.run_id}"},
        status_code=202,
    )


def _run_in_background(engine: sa.Engine, evaluation: EvaluationRequest,
                       adapter_class: Any, started: threading.Event) -> None:
    adapter = adapter_class(taxonomy=evaluation.taxonomy, settings=CallSettings())

    def progress(_done: int, _total: int) -> None:
        started.set()

    try:
        run_evaluation(engine, evaluation, adapter=adapter, progress=progress)
    except Exception:  # the background edge: the run row records the failure
        logger.exception("Evaluation run %s of %s failed", evaluation.run_id,
                         evaluation.model.model_id)
    finally:
        started.set()


@router.get("/results/{run_id}")
def results(request: Request, run_id: uuid.UUID) -> dict[str, Any]:
    """Return an evaluation run with its status, row errors and metrics."""
    with _daemon(request).reader.connect() as connection:
        try:
            document = eval_store.run_json(connection, run_id)
        except eval_store.RunNotFoundError as error:
            raise ApiError(404, "Run not found", str(error)) from None
    return {"success": True, "run": document}

