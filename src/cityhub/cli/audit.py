"""`cityhub audit`: check the stored audit ledger end to end, sign a tree head."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cityhub.cli.common import console, fail, load_settings

if TYPE_CHECKING:
    from cityhub.store.database import Database

app = typer.Typer(help="The audit ledger: verify it, sign its tree head.", no_args_is_help=True)


def _database(url: str) -> Database:
    from cityhub.store.database import open_database

    try:
        return open_database(url)
    except Exception as error:  # any driver error: one line with the URL and the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise fail(f"cannot open the store at {url.split('@')[-1]}: {reason}") from None


@app.command()
def verify(
    public_key: Annotated[Path | None, typer.Option(
        help="Ed25519 PEM (public or private) that signed the tree heads; default: the hub's "
        "key file (CITYHUB_AUDIT_KEY_FILE).")] = None,
) -> None:
    """Recompute the whole ledger from storage; name every altered, removed, inserted or
    reordered record. Exits 1 when anything is wrong."""
    from cityhub.governance.signing import load_public_key
    from cityhub.governance.verify import verify_ledger

    settings = load_settings()
    key_path = public_key or settings.audit_key_path()
    key = None
    if key_path.exists():
        try:
            key = load_public_key(key_path)
        except ValueError as error:
            raise fail(f"cannot read the key {key_path}: {error}") from None
    elif public_key is not None:
        raise fail(f"no key file at {public_key}")
    db = _database(settings.resolved_store_url())
    try:
        report = verify_ledger(db, key)
    finally:
        db.close()
    for finding in report.findings:
        typer.echo(finding.message)
    unsigned = max(0, report.records - report.signed_size)
    summary = (f"{report.records} records, {report.heads} signed tree heads "
               f"(latest covers {report.signed_size}); {unsigned} records after it are "
               "protected by the record chain only")
    if key is None:
        summary += "; no key: signatures NOT checked"
    if report.findings:
        console.print(f"[bold red]ledger TAMPERED[/]: {len(report.findings)} findings; {summary}")
        raise typer.Exit(code=1)
    typer.echo(f"ledger intact: {summary}")


@app.command()
def sign() -> None:
    """Sign a tree head over every record stored now (hubs also sign on a schedule)."""
    from cityhub.governance.ledger import Ledger
    from cityhub.governance.signing import load_or_create_key

    settings = load_settings()
    db = _database(settings.resolved_store_url())
    try:
        head = Ledger(db).sign(load_or_create_key(settings.audit_key_path()))
    finally:
        db.close()
    typer.echo(f"signed tree head: size {head.size} root {head.root} at {head.signed_at}")
