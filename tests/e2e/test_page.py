"""The operations page in Chromium against a running `cityhub demo` (tests/e2e/conftest.py):
the generated district drawn by the SUMO twin, the simulated devices, live updates, and what
each demo person sees after signing in (authentication is on in the demo)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import httpx
import pytest

from cityhub.web.testing import RunningHub
from tests.e2e.conftest import DEVICES, README_SHOT, shoot, sign_in

pytestmark = pytest.mark.slow

ROAD_COLOURS = {(0x2E, 0xCC, 0x71), (0xA3, 0xD6, 0x5C), (0xF1, 0xC4, 0x0F), (0xE6, 0x7E, 0x22),
                (0xE7, 0x4C, 0x3C)}

COLOURED_PIXELS = """() => {
  const c = document.getElementById('map');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = {};
  for (let i = 0; i < d.length; i += 4) {
    const k = d[i] + ',' + d[i+1] + ',' + d[i+2]; seen[k] = (seen[k] || 0) + 1;
  }
  return seen;
}"""


def count(hub: RunningHub, entity_type: str) -> int:
    answer = httpx.get(f"{hub.url}/ngsi-ld/v1/entities",
                       params={"type": entity_type, "limit": 0, "count": "true"},
                       headers=hub.service_token("demo-devices"))
    return int(answer.headers["NGSILD-Results-Count"])


LAYER_SIZES = """() => Object.fromEntries(Object.entries(window.cityhub.layers)
    .map(([k, v]) => [k, v.size]))"""


def as_person(page: Any, hub: RunningHub, person: str, purpose: str = "") -> None:
    sign_in(page, person, hub.password(person), purpose)
    assert page.evaluate("window.cityhub.reader.subject") == person


def test_map_draws_the_generated_network_coloured_by_congestion(page: Any,
                                                                demo_hub: RunningHub) -> None:
    # staff see the internal layers; the planning officer's grant adds the energy meters
    as_person(page, demo_hub, "planning.officer", "district-energy-plan")
    roads = count(demo_hub, "RoadSegment")
    assert roads == 80  # the generated 4x4 grid: 48 inner and 32 border edges, one way each
    assert page.eval_on_selector("#map", "c => Number(c.dataset.roads)") == roads
    assert page.locator(".waiting-note").count() == 0  # "no roads yet" went with the roads
    counts = page.evaluate(COLOURED_PIXELS)
    road_pixels = sum(n for key, n in counts.items()
                      if tuple(int(v) for v in key.split(",")) in ROAD_COLOURS)
    assert road_pixels > 2000  # 80 roads, 4 px wide, drawn over the whole map
    layers = page.evaluate(LAYER_SIZES)
    assert layers["signals"] == count(demo_hub, "TrafficSignal") == 16
    assert layers["sensors"] == count(demo_hub, "Device") == DEVICES
    path = shoot(page, "overview")
    if os.environ.get("CITYHUB_UPDATE_SCREENSHOT") == "1":  # the README's picture
        page.wait_for_function("window.cityhub.history.length >= 40", timeout=120_000)
        path = shoot(page, "overview")
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, README_SHOT)


def test_an_anonymous_visitor_sees_the_living_district_from_public_data(page: Any) -> None:
    layers = page.evaluate(LAYER_SIZES)
    assert layers["roads"] == 80  # the road network and its congestion are public
    assert page.evaluate("window.cityhub.summary.congestion.index") is not None
    assert layers["signals"] == layers["sensors"] == layers["meters"] == 0
    assert set(page.evaluate("window.cityhub.denied")) == {"signals", "sensors", "meters",
                                                           "alerts"}
    assert "not permitted" in page.text_content("#legend")
    assert page.text_content("#signin") == "Sign in"
    shoot(page, "anonymous")


def test_a_citizen_sees_public_data_only_and_officers_what_their_grants_allow(
        page: Any, demo_hub: RunningHub) -> None:
    as_person(page, demo_hub, "citizen")
    assert page.evaluate(LAYER_SIZES)["sensors"] == 0
    assert page.text_content("#kpi-power") == "not permitted"
    assert page.text_content("#reader") == "citizen"
    shoot(page, "citizen")
    with page.expect_navigation():
        page.click("#signin")  # signed in: the button signs out
    as_person(page, demo_hub, "transport.officer")
    layers = page.evaluate(LAYER_SIZES)
    assert layers["sensors"] == DEVICES
    assert layers["signals"] == 16
    assert layers["meters"] == 0  # the energy department's sensitive data
    assert page.evaluate("window.cityhub.denied") == ["meters"]
    assert page.text_content("#reader") == "staff · transport"
    shoot(page, "transport-officer")
    with page.expect_navigation():
        page.click("#signin")
    as_person(page, demo_hub, "planning.officer", "district-energy-plan")
    assert page.evaluate(LAYER_SIZES)["meters"] >= 1  # under the planning department's grant
    assert page.text_content("#kpi-power") != "not permitted"
    shoot(page, "planning-officer-granted")


def test_a_wrong_password_is_refused_on_the_form(page: Any,
                                                 request: pytest.FixtureRequest) -> None:
    request.node.expected_console_error = "401"  # the browser reports the refused request
    page.click("#signin")
    page.fill("input[name=username]", "citizen")
    page.fill("input[name=password]", "not the password")
    page.click("#login-ok")
    page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
    assert page.text_content("#login-error") == "Unknown user or wrong password."
    assert page.evaluate("localStorage.getItem('cityhub.token')") is None
    assert page.input_value("input[name=password]") == ""
    shoot(page, "login-refused")


def test_the_twin_updates_reach_the_page_each_simulated_minute(page: Any) -> None:
    before = page.evaluate("window.cityhub.history.length")
    # --speed 30: a simulated minute every 2 s; allow a busy machine ten times that
    page.wait_for_function(f"window.cityhub.history.length >= {before + 2}", timeout=60_000)
    shoot(page, "twin-live")


def test_charts_have_data(page: Any, demo_hub: RunningHub) -> None:
    as_person(page, demo_hub, "planning.officer", "district-energy-plan")
    page.wait_for_function("""() => ['chart-air', 'chart-energy'].every(id => {
        const chart = echarts.getInstanceByDom(document.getElementById(id));
        return chart && chart.getOption().series[0].data.length > 0; })""", timeout=60_000)
    sizes = page.evaluate("""() => ['chart-congestion', 'chart-air', 'chart-energy'].map(id =>
        echarts.getInstanceByDom(document.getElementById(id)).getOption().series[0].data.length)""")
    assert sizes[0] >= 1  # the congestion history
    # Its time axis spans the history, or the last half hour while the history is shorter,
    # not days around a first point or two.
    start, end, first, last = page.evaluate("""() => {
        const chart = echarts.getInstanceByDom(document.getElementById('chart-congestion'));
        const data = chart.getOption().series[0].data;
        return [...chart.getModel().getComponent('xAxis', 0).axis.scale.getExtent(),
                Date.parse(data[0][0]), Date.parse(data[data.length - 1][0])]; }""")
    assert end == last
    assert start == min(first, last - 30 * 60 * 1000)
    assert 1 <= sizes[1] <= DEVICES // 7 + 1  # air stations and meters among the devices
    assert 1 <= sizes[2] <= DEVICES // 7 + 1
    air = page.evaluate("""() => echarts.getInstanceByDom(document.getElementById('chart-air'))
        .getOption().series[0].data.map(d => d.value)""")
    assert all(isinstance(v, int | float) and 0 <= v <= 500 for v in air)  # IAQI from pm25
    assert page.text_content("#kpi-sensors").endswith(f"/{DEVICES}")
    assert page.locator("#scorecard tr").count() == 5  # heading and four indicators


def test_a_change_in_the_hub_reaches_the_page(page: Any, demo_hub: RunningHub) -> None:
    as_person(page, demo_hub, "transport.officer")  # alerts are internal data
    alert = "urn:ngsi-ld:Alert:demo:e2e-live"
    writer = demo_hub.service_token("demo-devices")  # the operations department owns alerts
    signal = httpx.get(f"{demo_hub.url}/ngsi-ld/v1/entities", headers=writer, params={
        "type": "TrafficSignal", "limit": 1, "options": "keyValues", "pick": "id,location"}).json()
    body = {"id": alert, "type": "Alert", "severity": {"type": "Property", "value": "critical"},
            "status": {"type": "Property", "value": "open"},
            "description": {"type": "Property", "value": "e2e live alert"},
            "location": {"type": "GeoProperty", "value": signal[0]["location"]}}
    api = demo_hub.url + "/ngsi-ld/v1/entities"
    assert httpx.post(api, json=body, headers=writer).status_code == 201
    page.wait_for_function(f"window.cityhub.layers.alerts.has('{alert}')", timeout=5000)
    assert "e2e live alert" in page.text_content("#alerts")
    assert httpx.delete(f"{api}/{alert}", headers=writer).status_code == 204
    page.wait_for_function(f"!window.cityhub.layers.alerts.has('{alert}')", timeout=5000)
    shoot(page, "live-update")


def test_language_switch_is_applied_and_remembered(page: Any) -> None:
    assert page.text_content("#tabs button[data-view=overview]") == "Overview"
    page.click("#lang")
    assert page.text_content("#tabs button[data-view=overview]") == "总览"
    assert page.text_content("[data-i18n='map.title']") == "片区地图"
    shoot(page, "chinese")
    page.reload()
    page.wait_for_function("window.cityhub && window.cityhub.ready", timeout=20_000)
    assert page.text_content("#tabs button[data-view=traffic]") == "交通"
    page.click("#lang")
    assert page.text_content("#tabs button[data-view=traffic]") == "Traffic"


@pytest.mark.parametrize(("view", "visible", "hidden"), [
    ("traffic", "#junctions", "#chart-air"),
    ("environment", "#chart-air", "#map"),
    ("scorecard", "#scorecard", "#map"),
    ("audit", "#audit", "#map"),
    ("overview", "#map", "#junctions"),
])
def test_main_views_open(page: Any, view: str, visible: str, hidden: str) -> None:
    page.click(f"#tabs button[data-view={view}]")
    assert page.is_visible(visible)
    assert not page.is_visible(hidden)
    shoot(page, f"view-{view}")
