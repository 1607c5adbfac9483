"""The data export of a dataset (CSV, GeoJSON, JSON-LD) goes through the same guard as every
read: 401 without a token, 403 without a grant, only the granted attributes and area with one,
403 again once the grant is revoked; every export is on the record (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest

from cityhub.governance.export import csv_rows
from tests.governance.conftest import Hub, add_parking
from tests.governance.test_enforcement import PURPOSE, grant
from tests.store.helpers import TERMS

EXPORT = "/catalogue/datasets/parking/export"
SPOTS = ["urn:ngsi-ld:ParkingSpot:transport:1", "urn:ngsi-ld:ParkingSpot:transport:2",
         "urn:ngsi-ld:ParkingSpot:transport:3"]
Tokens = Callable[[str], dict[str, str]]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def tokens_of(hub: Hub) -> Tokens:
    return lambda subject: hub.token(subject)


async def test_the_owner_exports_everything_in_every_format(store_hub: Hub) -> None:
    await add_parking(store_hub)
    tina = store_hub.token("tina")
    as_csv = await store_hub.http.get(EXPORT, params={"format": "csv"}, headers=tina)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="parking.csv"' in as_csv.headers["content-disposition"]
    table = rows(as_csv.text)
    assert [r["id"] for r in table] == SPOTS
    assert list(table[0]) == ["id", "type", "longitude", "latitude", "status", "plate"]
    assert table[0]["plate"] == "京A00001"
    assert (table[2]["longitude"], table[2]["latitude"]) == ("117.5", "39.9")

    geo = (await store_hub.http.get(EXPORT, params={"format": "geojson"}, headers=tina)).json()
    assert geo["type"] == "FeatureCollection"
    assert [f["id"] for f in geo["features"]] == SPOTS
    assert geo["features"][1]["properties"] == {"type": "ParkingSpot", "status": "occupied",
                                                "plate": "京A00002"}
    assert geo["features"][0]["geometry"] == {"type": "Point", "coordinates": [116.4, 39.9]}

    linked = await store_hub.http.get(EXPORT, params={"format": "jsonld"}, headers=tina)
    assert linked.headers["content-type"].startswith("application/ld+json")
    entities = linked.json()
    assert entities[0]["plate"] == {"type": "Property", "value": "京A00001"}
    assert entities[0]["@context"].startswith("https://uri.etsi.org/ngsi-ld/")


async def test_without_a_grant_nothing_is_exported(store_hub: Hub) -> None:
    await add_parking(store_hub)
    assert (await store_hub.http.get(EXPORT)).status_code == 401
    for who in ("eric", "cora", "sensor-1"):
        refused = await store_hub.http.get(EXPORT, params={"format": "csv"},
                                           headers=store_hub.token(who))
        assert refused.status_code == 403, who
        assert refused.headers["content-type"] == "application/problem+json"
        assert "may not read dataset parking" in refused.json()["detail"]
    assert not [e for e in store_hub.audit.events if e.action == "dataset.export"]


@pytest.mark.parametrize("form", ["csv", "geojson", "jsonld"])
async def test_a_grant_exports_only_its_attributes_and_area(store_hub: Hub, form: str) -> None:
    await add_parking(store_hub)
    granted = await grant(store_hub, tokens_of(store_hub), attributes=["status", "location"])
    eric = {**store_hub.token("eric"), "Cityhub-Purpose": PURPOSE}
    response = await store_hub.http.get(EXPORT, params={"format": form}, headers=eric)
    assert response.status_code == 200, response.text
    assert "京A" not in response.text  # no plate in any form
    assert SPOTS[2] not in response.text  # spot 3 lies outside the granted area
    if form == "csv":
        table = rows(response.text)
        assert list(table[0]) == ["id", "type", "longitude", "latitude", "status"]
        assert [r["status"] for r in table] == ["free", "occupied"]
    elif form == "geojson":
        features = response.json()["features"]
        assert [f["properties"] for f in features] == [
            {"type": "ParkingSpot", "status": "free"},
            {"type": "ParkingSpot", "status": "occupied"}]
    else:
        assert [sorted(e) for e in response.json()] == [
            ["@context", "id", "location", "status", "type"]] * 2

    exports = [e for e in store_hub.audit.events if e.action == "dataset.export"]
    assert len(exports) == 1
    assert exports[0].grant == granted["id"]
    assert exports[0].purpose == PURPOSE
    assert exports[0].detail["format"] == form
    assert exports[0].detail["entities"] == 2
    reads = [e for e in store_hub.audit.events if e.action == "entity.read"
             and e.grant == granted["id"]]
    assert sorted(e.subject for e in reads) == SPOTS[:2]

    # without the declared purpose, and after revocation, the grant does not apply
    assert (await store_hub.http.get(EXPORT, headers=store_hub.token("eric"))).status_code == 403
    revoked = await store_hub.http.post(f"/sharing/grants/{granted['id']}/revoke",
                                        headers=store_hub.token("tina"))
    assert revoked.status_code == 200, revoked.text
    assert (await store_hub.http.get(EXPORT, headers=eric)).status_code == 403


async def test_an_unknown_dataset_or_format_is_refused(hub: Hub) -> None:
    tina = hub.token("tina")
    assert (await hub.http.get("/catalogue/datasets/nothing/export",
                               headers=tina)).status_code == 404
    assert (await hub.http.get(EXPORT, params={"format": "xlsx"},
                               headers=tina)).status_code == 400
    assert json.loads((await hub.http.get(EXPORT, params={"format": "xlsx"}, headers=tina)
                       ).text)["type"].endswith("BadRequestData")


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_a_csv_cell_that_a_spreadsheet_would_run_is_kept_as_text(text: str) -> None:
    entity = {"id": "urn:ngsi-ld:Thing:1", "type": ["https://example.org/Thing"],
              "attrs": {"https://example.org/note": [{"type": "Property", "value": text}],
                        "https://example.org/level": [{"type": "Property", "value": -4.5}]}}
    text_out = "".join(csv_rows([entity], ["https://example.org/note",
                                           "https://example.org/level"], TERMS))
    row = next(csv.DictReader(io.StringIO(text_out, newline="")))
    assert row["https://example.org/note"] == "'" + text
    assert row["https://example.org/level"] == "-4.5"
