"""Where entities, their history and subscriptions live: the `Store` port and its SQL adapters."""

from cityhub.store.port import EntityQuery, QueryResult, Store
from cityhub.store.sql import SqlStore


def open_store(url: str) -> SqlStore:
    """The store for a URL: sqlite:///path.db (embedded default) or postgresql://... ."""
    return SqlStore.open(url)


__all__ = ["EntityQuery", "QueryResult", "SqlStore", "Store", "open_store"]
