"""The hub's FastAPI application, built from explicit settings (nothing happens at import time)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.responses import Response

from cityhub import __version__
from cityhub.api import auth, context_fetch, governance_state, ingestion, notifier, problems
from cityhub.api.fastpath import Hub
from cityhub.api.ldio import json_response
from cityhub.api.openapi import problem_answers
from cityhub.api.routers import (
    audit,
    auth_routes,
    batch,
    catalogue,
    deadletters,
    devices,
    discovery,
    entities,
    ingest,
    jsonld_contexts,
    login,
    ops,
    privacy,
    quality,
    sharing,
    subscriptions,
    temporal,
)
from cityhub.config import Settings
from cityhub.ngsild import jsonld
from cityhub.store import open_store
from cityhub.store.contexts import SqlContextStorage
from cityhub.store.service import EntityService

log = logging.getLogger(__name__)
NGSI_LD_PREFIX = "/ngsi-ld/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hub: the NGSI-LD API under /ngsi-ld/v1, /health, OpenAPI at /docs."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.resolved_store_url())
        services = jsonld.build_context_services(
            base_url=settings.public_url or "http://127.0.0.1:1026",
            storage=SqlContextStorage(store.db),
            context_dir=settings.context_dir,
            cache_dir=settings.data_dir / "contexts",
            fetch=context_fetch.HttpxFetcher(settings.context_fetch_timeout_s),
        )
        app.state.store = store
        app.state.inline_reads = store.db.dialect == "sqlite"  # see deps.budgeted_read
        ops.attach(app, store)
        app.state.service = EntityService(store)
        app.state.contexts = services.registry
        app.state.contexts_resolver = services.resolver
        log.info("event=hub_ready store=%s", settings.resolved_store_url().split("@")[-1])
        try:
            async with store.db.loop_reads():  # retrievals read from this loop
                with governance_state.running(app, settings, store):
                    auth.start_access(app)
                    login.start(app)
                    app.state.catalogue = app.state.access.catalogue
                    governance_state.seed_catalogue(app.state.catalogue, settings.datasets_file)
                    async with ingestion.running(app), notifier.running(app):
                        await ops.follow_bus(app)
                        yield
        finally:
            store.close()

    app = Hub(  # FastAPI, with retrieve and partial update answered first
        title="cityhub",
        version=__version__,
        summary="NGSI-LD context broker of the cityhub smart-city platform",
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    generate = app.openapi  # caches the schema; problem_answers is idempotent
    app.openapi = lambda: problem_answers(generate())  # type: ignore[method-assign]
    if settings.auth == "enabled":
        app.add_middleware(auth.AuthMiddleware, hub=app)
        app.guard_fast_path(partial(auth.AuthMiddleware, hub=app))

    # /health first: FastAPI tries routes in order, and probes should not pay for the others.
    @app.get("/health", tags=["operations"], summary="Ready when the hub has opened its store")
    async def health() -> Response:
        app.state.store.tenant_exists("")
        return json_response({"status": "ok", "version": __version__})

    app.answer_first("/health", health)

    # Each router straight under the app (not nested in one /ngsi-ld/v1 router): every level
    # of included router is walked on each request. Entities first: they are the hot paths.
    for module in (entities, batch, discovery, temporal, subscriptions, jsonld_contexts):
        app.include_router(module.router, prefix=NGSI_LD_PREFIX)
    for module in (audit, privacy, quality, auth_routes, login, catalogue, sharing, devices,
                   ingest, deadletters):
        app.include_router(module.router)
    ops.install(app)

    return app
