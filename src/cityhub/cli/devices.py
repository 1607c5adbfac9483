"""`cityhub devices ...`: the device registry of a running hub (over its HTTP API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cityhub.cli.common import console, fail

app = typer.Typer(help="Register and manage devices on a hub.", no_args_is_help=True)
HubOption = Annotated[str, typer.Option(help="Hub URL.")]
TenantOption = Annotated[str, typer.Option(help="Tenant (empty: the default tenant).")]
TokenOption = Annotated[str | None, typer.Option(
    envvar="CITYHUB_TOKEN", help="Bearer token for a hub with authentication (`cityhub auth "
    "token NAME` of a steward or of staff of the owning department).")]


def _call(hub: str, tenant: str, token: str | None, method: str, path: str,
          **kwargs: Any) -> Any:
    import httpx

    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = httpx.request(method, f"{hub.rstrip('/')}{path}", headers=headers,
                                 timeout=10.0, **kwargs)
    except httpx.HTTPError as error:
        raise fail(f"cannot reach the hub at {hub}: {error}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise fail(f"{response.status_code}: {detail}")
    return response.json()


@app.command()
def register(
    device_id: Annotated[str, typer.Argument(help="Device id, unique in the tenant.")],
    type_: Annotated[str, typer.Option("--type", help="Smart Data Models type.")],
    owner: Annotated[str, typer.Option(help="Owning department.")],
    lon: Annotated[float, typer.Option(help="Longitude (WGS84).")],
    lat: Annotated[float, typer.Option(help="Latitude (WGS84).")],
    decoder: Annotated[str, typer.Option(help="Payload decoder: json or kv.")] = "json",
    hub: HubOption = "http://127.0.0.1:1026",
    tenant: TenantOption = "",
    token: TokenOption = None,
) -> None:
    """Register a device and print its token (shown once)."""
    body = {"id": device_id, "type": type_, "owner": owner, "location": [lon, lat],
            "decoder": decoder}
    device = _call(hub, tenant, token, "POST", "/devices/v1/devices", json=body)
    console.print(f"registered {device_id}: topic {device['topic']}, entity {device['entityId']}")
    typer.echo(device["token"])


@app.command("list")
def list_devices(hub: HubOption = "http://127.0.0.1:1026", tenant: TenantOption = "",
                 token: TokenOption = None) -> None:
    """List the devices with their state and last-seen time."""
    for device in _call(hub, tenant, token, "GET", "/devices/v1/devices"):
        typer.echo(f"{device['id']}\t{device['type']}\t{device['owner']}\t{device['state']}\t"
                   f"{device['lastSeen'] or '-'}")


@app.command()
def revoke(device_id: str, hub: HubOption = "http://127.0.0.1:1026",
           tenant: TenantOption = "", token: TokenOption = None) -> None:
    """Refuse the device's messages from now on."""
    _call(hub, tenant, token, "POST", f"/devices/v1/devices/{device_id}/revoke")
    console.print(f"{device_id} revoked")


@app.command()
def reinstate(device_id: str, hub: HubOption = "http://127.0.0.1:1026",
              tenant: TenantOption = "", token: TokenOption = None) -> None:
    """Accept a revoked device's messages again."""
    _call(hub, tenant, token, "POST", f"/devices/v1/devices/{device_id}/reinstate")
    console.print(f"{device_id} reinstated")


@app.command()
def rotate(device_id: str, hub: HubOption = "http://127.0.0.1:1026",
           tenant: TenantOption = "", token: TokenOption = None) -> None:
    """Issue a new token for the device (printed once); the old one stops working."""
    rotated = _call(hub, tenant, token, "POST", f"/devices/v1/devices/{device_id}/rotate")
    typer.echo(rotated["token"])


@app.command("dead-letters")
def dead_letters(hub: HubOption = "http://127.0.0.1:1026", tenant: TenantOption = "",
                 token: TokenOption = None,
                 limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """Show the newest refused messages with their reasons."""
    found = _call(hub, tenant, token, "GET", "/ingest/v1/dead-letters", params={"limit": limit})
    console.print(f"{found['total']} dead letters")
    for item in found["items"]:
        typer.echo(f"{item['receivedAt']}\t{item['device']}\t{item['source']}\t{item['reason']}")
