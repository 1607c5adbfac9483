"""Scenario-level signal timing: clearance from the network's own programs, RESCO's step."""

from __future__ import annotations

from pathlib import Path

from cityhub.brain.observations import PhaseInfo
from cityhub.sandbox.runner import RunSpec, controller_for, rules_for
from cityhub.sandbox.scenarios import Scenario, network_all_red_s, resolve
from cityhub.sandbox.topology import Junction

NET = """<net>
  <edge id="a"/>
  <tlLogic id="J1" type="static" programID="0" offset="0">
    <phase duration="30" state="GGrr"/><phase duration="3" state="yyrr"/>
    <phase duration="2" state="rrrr"/>
    <phase duration="30" state="rrGG"/><phase duration="3" state="rryy"/>
  </tlLogic>
  <tlLogic id="J2" type="static" programID="0" offset="0">
    <phase duration="30" state="GGrr"/><phase duration="3" state="yyrr"/>
    <phase duration="30" state="rrGG"/><phase duration="4" state="rryy"/>
  </tlLogic>
</net>
"""


def test_all_red_follows_the_networks_own_programs(tmp_path: Path) -> None:
    net = tmp_path / "x.net.xml"
    net.write_text(NET)
    assert network_all_red_s(net) == 2.0  # J1 clears for 2 s after a yellow; J2 has none
    net.write_text(NET.replace('<phase duration="2" state="rrrr"/>', ""))
    assert network_all_red_s(net) == 0.0


def test_resco_scenarios_keep_their_clearance_and_decision_step() -> None:
    cologne = resolve("cologne1")
    assert cologne.all_red_s == 0.0  # RESCO's networks: yellow is the clearance
    assert rules_for(cologne).all_red_s == 0.0
    assert rules_for(cologne, all_red_s=1.0).all_red_s == 1.0
    arterial = Scenario("arterial4x4", cologne.config, cologne.net, 0, 60, 2.0, 5.0)
    assert controller_for(RunSpec("x", "greedy"), arterial).decision_interval_s == 5.0
    assert controller_for(RunSpec("x", "max-pressure", config=(("decision_interval_s", 7),)),
                          arterial).decision_interval_s == 7.0
    assert controller_for(RunSpec("x", "cityhub"), arterial).decision_interval_s == 4.0


def test_clearing_lanes_are_the_box_lanes_of_links_losing_green() -> None:
    phases = (PhaseInfo("GGr", ()), PhaseInfo("rGG", ()))
    junction = Junction("J", phases, ("a", "b", "c"), ("x",),
                        box_lanes=((":J_0_0",), (":J_1_0",), (":J_2_0", ":J_5_0")))
    assert junction.clearing_lanes("GGr", "rGG") == (":J_0_0",)
    assert junction.clearing_lanes("rGG", "GGr") == (":J_2_0", ":J_5_0")
