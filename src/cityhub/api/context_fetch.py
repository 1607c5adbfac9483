"""Fetching remote JSON-LD @contexts over HTTP(S): the context loader's one seam to the network.

The domain loader (`cityhub.ngsild.context_loader.DocumentLoader`) takes any `fetch(url)`
callable; this adapter is the real one, with a short timeout, a size cap and a whole-download
deadline.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from cityhub.ngsild.context_loader import JsonDocument, parse_context_json
from cityhub.ngsild.errors import LdContextNotAvailable


class HttpxFetcher:
    """Fetches a remote @context over HTTP(S): the loader's one seam to the network."""

    def __init__(
        self,
        timeout: float = 3.0,
        *,
        transport: httpx.BaseTransport | None = None,
        max_bytes: int = 2 * 1024 * 1024,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._transport = transport

    def __call__(self, url: str) -> JsonDocument:
        if urlsplit(url).scheme not in ("http", "https"):
            raise LdContextNotAvailable(
                f"@context {url} is not held locally and is not an http(s) URL"
            )
        deadline = time.monotonic() + self.timeout
        body = bytearray()
        try:
            with (
                httpx.Client(
                    timeout=self.timeout,
                    follow_redirects=True,
                    max_redirects=5,
                    transport=self._transport,
                    headers={"Accept": "application/ld+json, application/json;q=0.9"},
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise LdContextNotAvailable(
                        f"@context {url} could not be fetched: HTTP {response.status_code}"
                    )
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise LdContextNotAvailable(
                            f"@context {url} is larger than {self.max_bytes} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the whole download took too long")
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(
                f"@context {url} could not be fetched: {type(exc).__name__}: {exc}"
            ) from exc
        return parse_context_json(url, bytes(body))
