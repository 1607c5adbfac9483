"""Shortcuts that handlers declare: the tenant, the store, the entity service, the settings."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from cityhub.api.auth import guarded_service, guarded_store
from cityhub.config import Settings
from cityhub.ngsild.errors import BadRequestData, NonexistentTenant
from cityhub.store.port import Store
from cityhub.store.service import EntityService

_TENANT = re.compile(r"^[A-Za-z0-9_\-.:/]{1,64}$")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    """The store as the request's principal may read it (bare when auth is off)."""
    store: Store = request.app.state.store
    return guarded_store(request, store)


def get_service(request: Request) -> EntityService:
    """The entity service as the request's principal may write (bare when auth is off)."""
    service: EntityService = request.app.state.service
    return guarded_service(request, service)


def tenant_header(
    tenant: Annotated[
        str | None,
        Header(alias="NGSILD-Tenant", description="Tenant; absent means the default tenant."),
    ] = None,
) -> str:
    if tenant is None or tenant == "":
        return ""
    if not _TENANT.match(tenant):
        raise BadRequestData(f"invalid NGSILD-Tenant {tenant!r}")
    return tenant


def existing_tenant(
    tenant: Annotated[str, Depends(tenant_header)],
    store: Annotated[Store, Depends(get_store)],
) -> str:
    """For reads: a tenant nobody has written to does not exist (NonexistentTenant, 404)."""
    if not store.tenant_exists(tenant):
        raise NonexistentTenant(f"tenant {tenant!r} does not exist")
    return tenant


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ServiceDep = Annotated[EntityService, Depends(get_service)]
WriteTenant = Annotated[str, Depends(tenant_header)]
ReadTenant = Annotated[str, Depends(existing_tenant)]
