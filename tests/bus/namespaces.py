"""Bus namespaces of a test's own on the real NATS (`nats://127.0.0.1:4222/<name>`: its own
stream and subjects), deleted afterwards."""

from __future__ import annotations

import uuid

from tests.conftest import need_service

NATS = "nats://127.0.0.1:4222"


def new_namespace() -> str:
    need_service("NATS", "127.0.0.1", 4222)
    return f"t{uuid.uuid4().hex[:10]}"


async def drop_namespace(name: str) -> None:
    import nats

    connection = await nats.connect(NATS)
    try:
        await connection.jetstream().delete_stream(f"CITYHUB_{name}")
    finally:
        await connection.close()
