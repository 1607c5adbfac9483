"""Shortcuts that handlers declare: the tenant, the store, the entity service, the settings.

Every dependency here is `async def` although none awaits: FastAPI runs a plain `def`
dependency in the thread pool, and that hand-off cost more than the work itself. The hottest
routes (retrieve, query, partial attribute update) declare no dependencies at all: each one
FastAPI solves costs tens of microseconds, so they call the plain functions below
(`read_tenant`, `write_tenant`, `store_of`, `service_of`) on the request instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from cityhub.api.auth import guarded_service, guarded_store
from cityhub.config import Settings
from cityhub.ngsild.errors import BadRequestData, NonexistentTenant
from cityhub.store.database import OverBudget
from cityhub.store.port import Store
from cityhub.store.service import EntityService

T = TypeVar("T")
_TENANT = re.compile(r"^[A-Za-z0-9_\-.:/]{1,64}$")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def store_of(request: Request) -> Store:
    """The store as the request's principal may read it (bare when auth is off)."""
    store: Store = request.app.state.store
    return guarded_store(request, store)


def service_of(request: Request) -> EntityService:
    """The entity service as the request's principal may write (bare when auth is off)."""
    service: EntityService = request.app.state.service
    return guarded_service(request, service)


INLINE_READ_S = 0.002
"""How long a read whose size the client chooses (a query, a history) may run on the event
loop before it goes to the thread pool (`budgeted_read`): a selective query takes a tenth of
that, a scan far longer."""


async def budgeted_read(request: Request, read: Callable[[float | None], T]) -> T:
    """`read(deadline)`: on SQLite first inline with a deadline `INLINE_READ_S` away, and once
    stopped there (`OverBudget`, nothing changed) again in the thread pool without one;
    elsewhere in the thread pool. A selective read costs less than the hand-off (16 clients
    querying: 482 answers/s through the pool, 1,600/s inline), while a scan must not hold up
    every other request of the process."""
    if getattr(request.app.state, "inline_reads", False):
        try:
            return read(time.perf_counter() + INLINE_READ_S)
        except OverBudget:
            pass
    return await run_in_threadpool(read, None)


async def get_store(request: Request) -> Store:
    return store_of(request)


async def get_service(request: Request) -> EntityService:
    return service_of(request)


def check_tenant(tenant: str | None) -> str:
    """The tenant named by an NGSILD-Tenant value ("" for the default tenant)."""
    if tenant is None or tenant == "":
        return ""
    if not _TENANT.match(tenant):
        raise BadRequestData(f"invalid NGSILD-Tenant {tenant!r}")
    return tenant


def require_tenant(store: Store, tenant: str) -> str:
    """For reads: a tenant nobody has written to does not exist (NonexistentTenant, 404).

    The store remembers the tenants it has seen, so only a tenant's first read queries it."""
    if not store.tenant_exists(tenant):
        raise NonexistentTenant(f"tenant {tenant!r} does not exist")
    return tenant


def write_tenant(request: Request) -> str:
    """The tenant of a write, read from the request (for handlers that declare no dependency;
    they document the header with `openapi.parameters`)."""
    return check_tenant(request.headers.get("ngsild-tenant"))


def read_tenant(request: Request) -> str:
    """The tenant of a read, which must exist (see `write_tenant`)."""
    return require_tenant(store_of(request), write_tenant(request))


async def tenant_header(
    tenant: Annotated[
        str | None,
        Header(alias="NGSILD-Tenant", description="Tenant; absent means the default tenant."),
    ] = None,
) -> str:
    return check_tenant(tenant)


async def existing_tenant(
    tenant: Annotated[str, Depends(tenant_header)],
    store: Annotated[Store, Depends(get_store)],
) -> str:
    return require_tenant(store, tenant)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ServiceDep = Annotated[EntityService, Depends(get_service)]
WriteTenant = Annotated[str, Depends(tenant_header)]
ReadTenant = Annotated[str, Depends(existing_tenant)]
