"""The FastAPI application: OpenAI-compatible routes under /v1, control routes under /_emulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI

from emulator import batches_routes, control_routes, files_routes, responses_routes, sync_routes
from emulator.auth import require_api_key
from emulator.config import EmulatorConfig
from emulator.errors import install_error_handlers
from emulator.fault_middleware import FaultMiddleware
from emulator.runtime import Emulator


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
    return app
