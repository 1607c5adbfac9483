"""The pages of the commonest queries come from indexes in eid order on SQLite: a page reads
its own rows, not every entity of the type or the tenant first (`SqlStore._source`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cityhub.store.port import EntityQuery
from cityhub.store.service import EntityService
from cityhub.store.sql import SqlStore
from tests.store.helpers import query, vehicle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore.open(f"sqlite:///{tmp_path / 'hub.db'}")
    EntityService(opened).batch("", "upsert", [vehicle(n) for n in range(1, 30)])
    try:
        yield opened
    finally:
        opened.close()


def plan(store: SqlStore, asked: EntityQuery) -> list[str]:
    with store.db.transaction(write=False) as conn:
        source = store._source(conn, "", asked)
        return [str(row[3]) for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT e.doc FROM {source.rows} WHERE {source.where} "  # noqa: S608
            f"ORDER BY {source.order} LIMIT 20", source.params).fetchall()]


@pytest.mark.parametrize(("asked", "reads"), [
    (query(type_="Vehicle"), "SEARCH t USING COVERING INDEX attr_index_lookup"),
    (query(), "SEARCH e USING INDEX entities_tenant"),
    (query(type_="Vehicle", attrs_any=("speed",)),
     "SEARCH t USING COVERING INDEX attr_index_lookup"),
    (query(attrs_any=("speed", "battery")), "SEARCH e USING INDEX entities_tenant"),
    (query(type_="Vehicle", q="speed>0"), "SEARCH t USING COVERING INDEX attr_index_lookup"),
    (query(q='brandName=="Mercedes"'), "SEARCH e USING INDEX entities_tenant"),
    (query(ids=("urn:ngsi-ld:Vehicle:3", "urn:ngsi-ld:Vehicle:1")),
     "SEARCH entities USING COVERING INDEX sqlite_autoindex_entities_1 (tenant=? AND id=?)"),
])
def test_a_first_page_reads_an_index_and_sorts_nothing(
        store: SqlStore, asked: EntityQuery, reads: str) -> None:
    steps = plan(store, asked)
    assert any(step.startswith(reads) for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
    assert not any(step.startswith("SCAN") for step in steps), steps
    found = [e["id"] for e in store.query("", asked).entities]
    assert found == sorted(found, key=lambda i: int(i.rsplit(":", 1)[1]))  # eid order
    assert found
