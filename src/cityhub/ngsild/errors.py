"""NGSI-LD domain errors; the API maps each to an RFC 9457 problem with the spec's error type."""

from __future__ import annotations

ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"


class NgsiLdError(Exception):
    """Base of every NGSI-LD error; `kind` is the spec's error type, `status` the HTTP status."""

    kind = "InternalError"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, *, instance: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance = instance

    @property
    def type_uri(self) -> str:
        return ERROR_BASE + self.kind


class InvalidRequest(NgsiLdError):
    kind = "InvalidRequest"
    status = 400
    title = "Invalid request"


class BadRequestData(NgsiLdError):
    kind = "BadRequestData"
    status = 400
    title = "Bad request data"


class AlreadyExists(NgsiLdError):
    kind = "AlreadyExists"
    status = 409
    title = "Already exists"


class OperationNotSupported(NgsiLdError):
    kind = "OperationNotSupported"
    status = 422
    title = "Operation not supported"


class ResourceNotFound(NgsiLdError):
    kind = "ResourceNotFound"
    status = 404
    title = "Resource not found"


class LdContextNotAvailable(NgsiLdError):
    kind = "LdContextNotAvailable"
    status = 503
    title = "@context not available"


class NotAcceptable(NgsiLdError):
    kind = "NotAcceptable"
    status = 406
    title = "Not acceptable"


class UnsupportedMediaType(NgsiLdError):
    kind = "UnsupportedMediaType"
    status = 415
    title = "Unsupported media type"


class TooManyResults(NgsiLdError):
    kind = "TooManyResults"
    status = 403
    title = "Too many results"


class NonexistentTenant(NgsiLdError):
    kind = "NonexistentTenant"
    status = 404
    title = "Nonexistent tenant"
