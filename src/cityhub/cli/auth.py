"""`cityhub auth ...`: departments, users, service accounts, devices, citizens and their tokens
in the built-in issuer of the store the settings point at (CITYHUB_STORE_URL / data_dir)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer

from cityhub.cli.common import console, fail, load_settings
from cityhub.governance.datasets import Tier
from cityhub.governance.identity import PrincipalKind
from cityhub.governance.issuer import BuiltinIssuer, IssuerError

app = typer.Typer(help="Identities and tokens of the built-in issuer.", no_args_is_help=True)
Department = Annotated[str, typer.Option("--department", "-d", help="Owning department.")]
Roles = Annotated[list[str] | None, typer.Option("--role", "-r",
                                                 help="A role (repeat for more), e.g. steward.")]
Clearance = Annotated[Tier, typer.Option(help="Most protected tier it may see.")]


@contextmanager
def issuer() -> Iterator[BuiltinIssuer]:
    from cityhub.store import open_store

    settings = load_settings()
    try:
        store = open_store(settings.resolved_store_url())
    except Exception as error:  # any driver error: one line for the user
        raise fail(f"cannot open the store: {str(error).strip().splitlines()[0]}") from None
    try:
        yield BuiltinIssuer(store.db, settings.auth_issuer, settings.auth_audience)
    except IssuerError as error:
        raise fail(str(error)) from None
    finally:
        store.close()


def _add(name: str, kind: PrincipalKind, department: str, roles: list[str] | None,
         clearance: Tier) -> None:
    with issuer() as builtin:
        account = builtin.add_account(name, kind, department, tuple(roles or ()), clearance)
    console.print(f"added {account.kind.value} [bold]{account.subject}[/] "
                  f"(department {account.department or '-'}, clearance {account.clearance})")


@app.command()
def department(name: str, title: Annotated[str, typer.Option(help="Display name.")] = "") -> None:
    """Add a department."""
    with issuer() as builtin:
        builtin.add_department(name, title)
    console.print(f"added department [bold]{name}[/]")


@app.command()
def user(name: str, department: Department, role: Roles = None,
         clearance: Clearance = Tier.INTERNAL) -> None:
    """Add a member of a department's staff."""
    _add(name, PrincipalKind.STAFF, department, role, clearance)


@app.command()
def service(name: str, department: Department, role: Roles = None,
            clearance: Clearance = Tier.INTERNAL) -> None:
    """Add a service account of a department."""
    _add(name, PrincipalKind.SERVICE, department, role, clearance)


@app.command()
def device(name: str, department: Department) -> None:
    """Add a device account (it writes its department's data)."""
    _add(name, PrincipalKind.DEVICE, department, None, Tier.PUBLIC)


@app.command()
def citizen(name: str) -> None:
    """Add a citizen account (public data only)."""
    _add(name, PrincipalKind.CITIZEN, "", None, Tier.PUBLIC)


@app.command()
def token(
    name: str,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 366, help="Lifetime.")] = 8.0,
    purpose: Annotated[str | None, typer.Option(help="Purpose claim of the token.")] = None,
) -> None:
    """Print a signed bearer token for an account (stdout, for scripts)."""
    with issuer() as builtin:
        signed = builtin.issue(name, lifetime=timedelta(hours=hours), purpose=purpose)
    typer.echo(signed)


@app.command()
def disable(name: str) -> None:
    """Disable an account: its tokens are refused by every hub process within 2 s."""
    with issuer() as builtin:
        builtin.set_disabled(name, True)
    console.print(f"disabled [bold]{name}[/]: its tokens are refused from now on")


@app.command()
def enable(name: str) -> None:
    """Enable a disabled account again."""
    with issuer() as builtin:
        builtin.set_disabled(name, False)
    console.print(f"enabled [bold]{name}[/]")


@app.command()
def remove(name: str) -> None:
    """Remove an account: its tokens are refused by every hub process within 2 s."""
    with issuer() as builtin:
        builtin.remove_account(name)
    console.print(f"removed [bold]{name}[/]: its tokens are refused from now on")


@app.command("rotate-key")
def rotate_key() -> None:
    """Make a new signing key; tokens signed by older keys keep verifying until retired."""
    with issuer() as builtin:
        kid = builtin.rotate_key()
    console.print(f"new signing key [bold]{kid}[/]")


@app.command("list")
def list_accounts() -> None:
    """List departments and accounts."""
    with issuer() as builtin:
        for name, title in builtin.departments():
            typer.echo(f"department {name}\t{title}")
        for account in builtin.accounts():
            typer.echo(f"{account.kind.value} {account.subject}\tdepartment="
                       f"{account.department or '-'}\troles={','.join(account.roles) or '-'}\t"
                       f"clearance={account.clearance.value}"
                       + ("\tdisabled" if account.disabled else ""))
