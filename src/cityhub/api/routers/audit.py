"""The audit ledger over HTTP: signed tree heads, records, inclusion and consistency proofs
(RFC 9162), and the data steward's report per dataset. Hashes are hex, signatures base64.

Signed heads and proofs disclose no record: any authenticated principal but a device may read
them (action `verify`). Records, signing a head and the steward's report need the `auditor` or
`steward` role (action `audit`); see policies/services.cedar."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from cityhub.api.deps import WriteTenant
from cityhub.api.governance_state import DATASET_ID, catalogued
from cityhub.api.ldio import json_response
from cityhub.api.service_access import allow, dataset_resource, ledger_resource
from cityhub.governance.ledger import Ledger, LedgerError
from cityhub.governance.signing import TreeHead, key_id, public_pem
from cityhub.governance.steward import steward_report
from cityhub.ngsild.errors import BadRequestData, ResourceNotFound

router = APIRouter(prefix="/audit", tags=["audit"])
MAX_LEAVES = 1000
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def _head(head: TreeHead | None) -> dict[str, Any] | None:
    if head is None:
        return None
    return {"size": head.size, "root": head.root, "signedAt": head.signed_at,
            "signature": head.signature, "keyId": head.key_id}


def _flush(request: Request) -> None:
    """Answer over everything recorded so far (the sink buffers for a fraction of a second)."""
    flush = getattr(request.app.state.audit, "flush", None)
    if flush is not None:
        flush()


def _run(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except LedgerError as error:
        raise BadRequestData(str(error)) from None


@router.get("/head", summary="The latest signed tree head and the ledger's current size")
def latest_head(request: Request) -> Response:
    allow(request, "verify", ledger_resource())
    _flush(request)
    ledger = _ledger(request)
    public = request.app.state.audit_key.public_key()
    return json_response({"size": ledger.size(), "signedHead": _head(ledger.latest_head()),
                          "keyId": key_id(public), "publicKey": public_pem(public)})


@router.post("/head", status_code=201, summary="Sign a tree head now over every record so far")
def sign_head(request: Request) -> Response:
    allow(request, "audit", ledger_resource())
    _flush(request)
    head = _ledger(request).sign(request.app.state.audit_key)
    return json_response(_head(head), status=201)


@router.get("/heads", summary="Every signed tree head, oldest first")
def heads(request: Request) -> Response:
    allow(request, "verify", ledger_resource())
    return json_response([_head(h) for h in _ledger(request).heads()])


@router.get("/leaves", summary="Ledger records [start, end), at most 1000")
def leaves(
    request: Request,
    start: Annotated[int, Query(ge=0, le=2**62, description="First index")] = 0,
    end: Annotated[int | None, Query(ge=0, le=2**62, description="Index past the last")] = None,
) -> Response:
    allow(request, "audit", ledger_resource())
    _flush(request)
    stop = min(end if end is not None else start + 100, start + MAX_LEAVES)
    return json_response([{"index": leaf.index, "leafHash": leaf.leaf_hash,
                           "record": leaf.record}
                          for leaf in _ledger(request).leaves(start, stop)])


@router.get("/proof/inclusion", summary="RFC 9162 inclusion proof of one record")
def inclusion(
    request: Request,
    index: Annotated[int | None, Query(ge=0, le=2**62, description="Record index")] = None,
    leaf_hash: Annotated[str | None, Query(alias="hash", description="Leaf hash (hex)")] = None,
    size: Annotated[int | None, Query(ge=1, le=2**62, description="Tree size (default: the "
                                      "latest signed head's)")] = None,
) -> Response:
    allow(request, "verify", ledger_resource())
    _flush(request)
    ledger = _ledger(request)
    if (index is None) == (leaf_hash is None):
        raise BadRequestData("give exactly one of index and hash")
    if leaf_hash is not None:
        if not _HEX.match(leaf_hash):
            raise BadRequestData("hash must be 64 hex digits")
        index = ledger.index_of(leaf_hash)
        if index is None:
            raise ResourceNotFound(f"no record has leaf hash {leaf_hash}")
    assert index is not None
    latest = ledger.latest_head()
    tree_size = size if size is not None else (latest.size if latest else ledger.size())
    path = _run(ledger.inclusion, index, tree_size)
    record = ledger.leaves(index, index + 1)
    return json_response({"index": index, "treeSize": tree_size,
                          "leafHash": record[0].leaf_hash if record else None,
                          "root": _run(ledger.root, tree_size).hex(),
                          "path": [p.hex() for p in path]})


@router.get("/proof/consistency", summary="RFC 9162 consistency proof between two tree sizes")
def consistency(
    request: Request,
    first: Annotated[int, Query(ge=0, le=2**62, description="The older tree size")],
    second: Annotated[int, Query(ge=0, le=2**62, description="The newer tree size")],
) -> Response:
    allow(request, "verify", ledger_resource())
    _flush(request)
    ledger = _ledger(request)
    path = _run(ledger.consistency, first, second)
    return json_response({"first": first, "second": second,
                          "firstRoot": _run(ledger.root, first).hex(),
                          "secondRoot": _run(ledger.root, second).hex(),
                          "path": [p.hex() for p in path]})


@router.get("/datasets/{dataset}/report",
            summary="The data steward's report: who used the dataset, when, why, under which grant")
def report(
    request: Request,
    tenant: WriteTenant,
    dataset: Annotated[str, Path(pattern=DATASET_ID, description="Dataset id")],
    recent: Annotated[int, Query(ge=0, le=1000, description="Latest events listed")] = 50,
) -> Response:
    allow(request, "audit", dataset_resource(tenant, catalogued(request, tenant, dataset)))
    _flush(request)
    return json_response(steward_report(_ledger(request), tenant, dataset, recent))
