"""Several hub processes may start at once on one PostgreSQL: creating the schema must not race."""

from __future__ import annotations

import threading

from cityhub.store import SqlStore


def test_concurrent_openings_create_the_schema_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            SqlStore.open(pg_url).close()
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = SqlStore.open(pg_url)
    try:
        assert store.tenant_exists("")
    finally:
        store.close()
