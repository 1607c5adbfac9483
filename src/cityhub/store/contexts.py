"""User @contexts (the /jsonldContexts API) in the SQL store, so every hub replica sees them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from cityhub.ngsild.context_registry import ContextRecord
from cityhub.store.database import Database


def _encode(record: ContextRecord) -> str:
    return orjson.dumps(
        {
            "id": record.id,
            "url": record.url,
            "kind": record.kind,
            "document": record.document,
            "created_at": record.created_at.isoformat(),
            "hits": record.hits,
            "last_usage": record.last_usage.isoformat() if record.last_usage else None,
        }
    ).decode()


def _decode(text: str) -> ContextRecord:
    raw: dict[str, Any] = orjson.loads(text)
    return ContextRecord(
        id=raw["id"],
        url=raw["url"],
        kind=raw["kind"],
        document=raw["document"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        hits=raw["hits"],
        last_usage=datetime.fromisoformat(raw["last_usage"]) if raw["last_usage"] else None,
    )


class SqlContextStorage:
    """The `ContextStorage` port on the store's `json_contexts` table."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def _one(self, column: str, value: str) -> ContextRecord | None:
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT record FROM json_contexts WHERE {column} = ?", (value,)
            ).fetchone()
        return None if row is None else _decode(row[0])

    def get(self, context_id: str) -> ContextRecord | None:
        return self._one("id", context_id)

    def get_by_url(self, url: str) -> ContextRecord | None:
        return self._one("url", url)

    def put(self, record: ContextRecord) -> None:
        with self._db.transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO json_contexts (id, url, record) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET url = excluded.url, record = excluded.record",
                (record.id, record.url, _encode(record)),
            )

    def delete(self, context_id: str) -> bool:
        with self._db.transaction(write=True) as conn:
            existed = conn.execute(
                "SELECT 1 FROM json_contexts WHERE id = ?", (context_id,)
            ).fetchone()
            conn.execute("DELETE FROM json_contexts WHERE id = ?", (context_id,))
        return existed is not None

    def list(self) -> Sequence[ContextRecord]:
        with self._db.transaction(write=False) as conn:
            rows = conn.execute("SELECT record FROM json_contexts ORDER BY id").fetchall()
        return [_decode(r[0]) for r in rows]
