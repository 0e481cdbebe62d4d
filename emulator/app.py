"""The FastAPI application: OpenAI-compatible routes under /v1, control routes under /_emulator."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from emulator import batches_routes, control_routes, files_routes, responses_routes, sync_routes
from emulator.auth import require_api_key
from emulator.config import EmulatorConfig
from emulator.errors import install_error_handlers
from emulator.fault_middleware import FaultMiddleware
from emulator.runtime import Emulator

_OBJECT_ID = re.compile(r"^(resp|batch|file|chatcmpl|batch_req)[_-][0-9A-Za-z_-]+$")


def route_of(path: str) -> str:
    """`/v1/responses/resp_123/cancel` -> `/v1/responses/{id}/cancel`, for request counts."""
    return "/".join("{id}" if _OBJECT_ID.match(part) else part for part in path.split("/"))


def create_app(config: EmulatorConfig) -> FastAPI:
    emulator = Emulator(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(emulator.run_ticker())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await emulator.aclose()

    app = FastAPI(title="Laneway OpenAI emulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.emulator = emulator
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
    for module in (files_routes, batches_routes, responses_routes, sync_routes):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(control_routes.router)
    app.add_middleware(FaultMiddleware, faults=emulator.faults)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            emulator.requests[f"{request.method} {route_of(request.url.path)}"] += 1
        return response

    return app
