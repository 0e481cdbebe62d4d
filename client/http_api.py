"""The HTTP API: Laneway's operations for non-Python backends, over the Python client.

Every `/v1` route needs `Authorization: Bearer <token>`; the configured token names an actor,
a workspace and roles (settings.api_tokens / LANEWAY_API_TOKENS_FILE). A token sees and acts
on its own workspace's jobs only; who may approve, reject or control a job is the rule of
`laneway.permissions`, which the job's workflow enforces. `POST /webhooks/openai` takes the
provider's signed webhooks (client/webhooks.py). `POST /codec/encode` and `/codec/decode` are
Temporal's remote codec for the Web UI and the `temporal` CLI (an operator's token). The
OpenAPI document is at /openapi.json, browsable at /docs.

Status codes: 401 no or unknown token, 403 not your workspace or not your action, 404 no such
job, 409 the action makes no sense now (e.g. approving a running job), 422 bad input (the body
says which field and why), 502 Temporal refused the call, 503 Temporal unreachable, 504 an
action or start was sent and no answer came (its fate is unknown: check the job's status).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, Final

import structlog
import uvicorn
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy.exc import SQLAlchemyError
from temporalio.api.common.v1 import Payloads
from temporalio.service import RPCError, RPCStatusCode

from client.jobs import (
    ActionFateUnknown,
    JobActionForbidden,
    JobActionRefused,
    JobDetails,
    JobNotFoundError,
    JobSummary,
    LanewayClient,
    LanewayClientError,
    ResultFile,
    ResultNotReady,
    TemporalRefused,
    TemporalUnreachable,
)
from client.webhooks import WebhookReceiver
from laneway.background import Actor
from laneway.batch import BatchJobSpec
from laneway.jobs import (
    JOB_TYPE_PATTERN,
    JobId,
    JobInput,
    JobSpec,
    ReviewPolicy,
    SideEffect,
    check_job_id,
    job_id_problem,
)
from laneway.lifecycle import JobState
from laneway.logging_setup import configure_logging
from laneway.problems import problem_location, problem_message
from laneway.settings import Settings, SettingsError, TokenIdentity, load_settings
from laneway.status import Action, Lane, ProductStatus
from store.ledger import upgrade_to_head
from workers.codec import EncryptionCodec, PayloadKeyError
from workers.temporal_client import payload_keyring

log = structlog.get_logger(__name__)
HTTP_MAX_TEXT_CHARS: Final = 20_000_000
bearer = HTTPBearer(auto_error=False, description="an API token from the Laneway configuration")


# ---- request and response bodies -----------------------------------------------------------


class SubmittedInput(JobInput):
    """The model call as submitted: text of any size up to the request limit; text over
    INLINE_TEXT_MAX_CHARS is stored as an artifact and passed to the job by reference."""

    text: str | None = Field(
        default=None, min_length=1, max_length=HTTP_MAX_TEXT_CHARS, description="input text"
    )


class BackgroundSubmission(BaseModel):
    """A background job; workspace and requester come from the token."""

    job_type: str = Field(pattern=JOB_TYPE_PATTERN, description="short slug such as research_brief")
    input: SubmittedInput
    review_policy: ReviewPolicy = ReviewPolicy.AUTO
    side_effect: SideEffect | None = None
    provider_deadline: timedelta | None = None
    review_deadline: timedelta | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    job_id: JobId | None = Field(
        default=None,
        description=(
            "your own id makes the submission safe to repeat: 1-128 letters, digits, . _ -"
        ),
    )

    @field_validator("job_id")
    @classmethod
    def _reachable_id(cls, value: str | None) -> str | None:
        return None if value is None else check_job_id(value)


class Submitted(BaseModel):
    job_id: str
    lane: Lane


class ControlBody(BaseModel):
    note: str = Field(default="", max_length=2000, description="why: kept in the audit trail")


# ---- the app ---------------------------------------------------------------------------------


def create_app(settings: Settings, *, client: LanewayClient | None = None) -> FastAPI:
    """The API app; connects to Temporal (and migrates the ledger) when it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        laneway = client or await LanewayClient.connect(settings)
        await asyncio.to_thread(upgrade_to_head, settings.ledger_url)
        app.state.laneway = laneway
        app.state.webhooks = WebhookReceiver(settings, laneway)
        await asyncio.to_thread(app.state.webhooks.prune)
        yield
        app.state.webhooks.close()
        laneway.close()

    app = FastAPI(
        title="Laneway",
        version="1",
        description=(__doc__ or "").split("\n\n", 1)[1],
        lifespan=lifespan,
    )
    app.state.tokens = settings.tokens()
    app.state.codec = EncryptionCodec(payload_keyring(settings))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=codec_origins(settings),
        allow_credentials=True,
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    _add_error_handlers(app)
    _add_job_routes(app)
    _add_codec_routes(app)

    @app.get("/healthz", tags=["meta"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/openai", tags=["webhooks"], status_code=200)
    async def openai_webhook(request: Request) -> dict[str, str]:
        """OpenAI's signed webhook (Standard Webhooks). 400: bad or stale signature."""
        receiver: WebhookReceiver = request.app.state.webhooks
        outcome = await receiver.receive(await request.body(), dict(request.headers))
        return {"outcome": outcome}

    return app


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The actor the request's bearer token names; 401 without a known token."""
    if credentials is None:
        raise HTTPException(
            401,
            "send an API token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens: dict[str, TokenIdentity] = request.app.state.tokens
    for token, identity in tokens.items():
        if hmac.compare_digest(token.encode(), credentials.credentials.encode()):
            return identity.as_actor()
    raise HTTPException(
        401,
        "unknown API token; use one configured in LANEWAY_API_TOKENS(_FILE)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def laneway_client(request: Request) -> LanewayClient:
    found: LanewayClient = request.app.state.laneway
    return found


ActorDep = Annotated[Actor, Depends(current_actor)]
ClientDep = Annotated[LanewayClient, Depends(laneway_client)]


def _add_job_routes(app: FastAPI) -> None:
    async def own_job(client: LanewayClient, actor: Actor, job_id: str) -> JobSummary:
        """The job, if it belongs to the actor's workspace; 403 otherwise (404 if none)."""
        _reachable(job_id)
        job = await client.describe_job(job_id)
        workspace = job.workspace or (await client.status(job_id)).workspace
        if workspace != actor.workspace:
            raise HTTPException(403, f"job {job_id} is not in workspace {actor.workspace}")
        return job

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs(
        actor: ActorDep,
        client: ClientDep,
        status: ProductStatus | None = None,
        lane: Lane | None = None,
        job_type: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[JobSummary]:
        """The token's workspace's jobs, newest first, filtered by status, lane and job type."""
        return await client.list_jobs(
            status=status, lane=lane, workspace=actor.workspace, job_type=job_type, limit=limit
        )

    @app.post("/v1/jobs/background", tags=["jobs"], status_code=202)
    async def submit_background(
        body: BackgroundSubmission, actor: ActorDep, client: ClientDep
    ) -> Submitted:
        """Start a background job (a Responses API call in background mode).

        Input text over the inline limit is stored as an artifact first: it never enters
        workflow history."""
        given = body.input.model_dump(exclude_none=True)
        job_input = await asyncio.to_thread(lambda: client.job_input(**given))
        spec = JobSpec.model_validate(
            {
                **body.model_dump(exclude={"job_id", "input"}, exclude_none=True),
                "input": job_input,
                "workspace": actor.workspace,
                "requested_by": actor.id,
            }
        )
        job_id = await client.start_background_job(spec, job_id=body.job_id)
        return Submitted(job_id=job_id, lane=Lane.BACKGROUND)

    @app.post("/v1/jobs/batch", tags=["jobs"], status_code=202)
    async def submit_batch(
        actor: ActorDep,
        client: ClientDep,
        file: Annotated[
            UploadFile, File(description="the JSONL input, one request or record a line")
        ],
        spec: Annotated[
            str,
            Form(
                description=(
                    "the batch job as JSON: BatchJobSpec without input, workspace and "
                    'requested_by, e.g. {"job_type": "ticket_triage", "input_format": '
                    '"records", "template": {...}}; may carry "job_id"'
                )
            ),
        ],
    ) -> Submitted:
        """Start a batch job over an uploaded JSONL file (Files + Batch API, batch price)."""
        fields = _json_object(spec, "spec")
        job_id = fields.pop("job_id", None)
        if job_id is not None and not isinstance(job_id, str):
            raise HTTPException(422, "spec.job_id must be a string")
        if job_id is not None and (problem := job_id_problem(job_id)) is not None:
            raise HTTPException(422, f"spec.job_id: {problem}")
        ref = await asyncio.to_thread(client.store_batch_input, file.file)
        batch = BatchJobSpec.model_validate(
            {**fields, "input": ref, "workspace": actor.workspace, "requested_by": actor.id}
        )
        started = await client.start_batch_job(batch, job_id=job_id)
        return Submitted(job_id=started, lane=Lane.BATCH)

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def show_job(job_id: str, actor: ActorDep, client: ClientDep) -> JobDetails:
        """Status, progress, cost and allowed actions, with the audit trail."""
        await own_job(client, actor, job_id)
        return await client.details(job_id)

    @app.post("/v1/jobs/{job_id}/{action}", tags=["jobs"])
    async def act(
        job_id: str,
        action: Action,
        actor: ActorDep,
        client: ClientDep,
        body: ControlBody | None = None,
    ) -> JobState:
        """approve, reject, cancel, retry, escalate or archive, recorded with who and why.

        Answers once the job has moved on (approve: once its side effect has run).
        """
        await own_job(client, actor, job_id)
        return await client.act(job_id, action, actor, (body or ControlBody()).note)

    @app.get("/v1/jobs/{job_id}/results", tags=["results"])
    async def results(job_id: str, actor: ActorDep, client: ClientDep) -> StreamingResponse:
        """The output (background, text) or the results file (batch, JSONL)."""
        await own_job(client, actor, job_id)
        return _stream(await client.results(job_id))

    @app.get("/v1/jobs/{job_id}/errors", tags=["results"])
    async def errors(job_id: str, actor: ActorDep, client: ClientDep) -> StreamingResponse:
        """Per-record errors (batch) or failed attempts (background), JSONL."""
        await own_job(client, actor, job_id)
        return _stream(await client.results(job_id, errors=True))


def _reachable(job_id: str, where: str = "") -> None:
    try:
        check_job_id(job_id)
    except ValueError as error:
        raise HTTPException(422, f"{where}{error}") from None


def codec_origins(settings: Settings) -> list[str]:
    """Origins allowed to call the API from a browser: the Temporal Web UI, by both names."""
    url = settings.temporal_ui_url
    origins = [url, url.replace("://127.0.0.1:", "://localhost:")]
    return [*dict.fromkeys([*origins, *settings.codec_cors_origins])]


def codec_actor(actor: ActorDep) -> Actor:
    """Decoding reads every workspace's payloads: operators only."""
    if "operator" not in actor.roles:
        raise HTTPException(403, "the codec endpoint is for operators: a token with role operator")
    return actor


def _add_codec_routes(app: FastAPI) -> None:
    """Temporal's remote codec protocol, for the Web UI (`--ui-codec-endpoint`) and the CLI
    (`temporal workflow show --codec-endpoint <api>/codec --codec-auth "Bearer <token>"`)."""

    async def transcode(request: Request, encode: bool) -> Response:
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as error:
            raise HTTPException(400, f'expected {{"payloads": [...]}}: {error}') from None
        codec: EncryptionCodec = request.app.state.codec
        try:
            done = await (codec.encode if encode else codec.decode)(payloads.payloads)
        except PayloadKeyError as error:
            raise HTTPException(400, str(error)) from None
        body = json_format.MessageToJson(Payloads(payloads=done))
        return Response(body, media_type="application/json")

    @app.post("/codec/encode", tags=["codec"])
    async def codec_encode(
        request: Request, actor: Annotated[Actor, Depends(codec_actor)]
    ) -> Response:
        """Encrypt payloads with the current key (Temporal's remote codec protocol)."""
        return await transcode(request, encode=True)

    @app.post("/codec/decode", tags=["codec"])
    async def codec_decode(
        request: Request, actor: Annotated[Actor, Depends(codec_actor)]
    ) -> Response:
        """Decrypt payloads with the key each names; others come back unchanged."""
        return await transcode(request, encode=False)


def _stream(found: ResultFile) -> StreamingResponse:
    return StreamingResponse(
        found.chunks,
        media_type=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(422, f"{field} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise HTTPException(422, f"{field} must be a JSON object")
    return value


def _add_error_handlers(app: FastAPI) -> None:
    statuses: list[tuple[type[Exception], int]] = [
        (JobActionForbidden, 403),
        (JobNotFoundError, 404),
        (JobActionRefused, 409),
        (ResultNotReady, 409),
        (TemporalUnreachable, 503),
        (ActionFateUnknown, 504),
        (TemporalRefused, 502),
        (LanewayClientError, 422),
    ]
    for error_type, code in statuses:
        app.add_exception_handler(error_type, _plain(code))

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        # The request, or a spec built from it, failed its checks: where, and what is wrong.
        assert isinstance(error, ValidationError | RequestValidationError)
        problems = [
            {
                "type": problem["type"],
                "loc": problem_location(problem["loc"]),
                "msg": problem_message(problem),
            }
            for problem in error.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)

    async def temporal_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RPCError)
        log.warning("temporal call failed", status=error.status.name, error=str(error))
        if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return JSONResponse({"detail": "the job service is unreachable; try again"}, 503)
        return JSONResponse({"detail": f"the job service refused: {error.message}"}, 502)

    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(RPCError, temporal_error)


def _plain(code: int) -> Any:
    async def handler(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=code)

    return handler


def serve(settings: Settings) -> int:
    """`laneway api`: serve the HTTP API on settings.api_address until interrupted."""
    configure_logging(settings.log_format, settings.log_level)
    try:
        app = create_app(settings)  # no payload key: a SettingsError, before any request
    except SettingsError as error:
        print(f"laneway api: {error}", file=sys.stderr)
        return 2
    if not settings.tokens():
        log.warning("no API tokens configured: every /v1 request will get 401")
    problem = _unmet_dependency(settings)
    if problem is not None:
        print(f"laneway api: {problem}", file=sys.stderr)
        return 1
    host, _, port = settings.api_address.rpartition(":")
    uvicorn.run(app, host=host, port=int(port), log_config=None)
    return 0


def _unmet_dependency(settings: Settings) -> str | None:
    """What the API cannot reach at start (Temporal, the ledger), in one line; else None."""
    try:
        asyncio.run(LanewayClient.connect(settings))
    except TemporalUnreachable as error:
        return str(error)
    try:
        upgrade_to_head(settings.ledger_url)
    except (SQLAlchemyError, OSError, ImportError, ValueError) as error:
        said = str(error).splitlines()[0] if str(error) else "unusable"
        return f"cannot open the ledger: {said}; check LANEWAY_DATABASE_URL and LANEWAY_DATA_DIR"
    return None


def main() -> int:
    try:
        settings = load_settings()
        return serve(settings)
    except SettingsError as error:
        print(f"laneway api: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
