"""Scenario-level signal timing: clearance from the network's own programs, RESCO's step,
the maximum red per link."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from cityhub.brain.observations import PhaseInfo
from cityhub.brain.safety import SafetyRules, SignalHead
from cityhub.sandbox.live import junctions_from_net
from cityhub.sandbox.runner import RunSpec, controller_for, rules_for
from cityhub.sandbox.scenarios import Scenario, network_all_red_s, resolve
from cityhub.sandbox.topology import Junction, permissive_lanes

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


def test_cologne1s_left_phases_are_forced_only_for_a_stalled_left_turner() -> None:
    # cologne1's two protected-left phases green only links that go permissively (`g`) in a
    # through phase. A controller alternates the two through phases for ten minutes with
    # vehicles on every link: no left phase is forced (with the maximum red counted per
    # phase, a busy lane forced one every two minutes), and every link shows green within the
    # maximum red. A left-turner stopped at the line for good gets its protected phase.
    (junction,) = junctions_from_net(resolve("cologne1").net)
    states = [p.state for p in junction.phases]
    assert len(junction.link_lanes) == len(states[0])
    assert {lane for lanes in junction.link_lanes for lane in lanes} == set(junction.incoming)
    through = [i for i, s in enumerate(states) if s.count("G") > 4]
    lefts = [i for i in range(len(states)) if i not in through]
    assert len(through) == 2
    assert len(lefts) == 2
    turns = {i for left in lefts for i, c in enumerate(states[left]) if c == "G"}
    assert all(any(states[t][i] == "g" for t in through) for i in turns)
    by_phase = permissive_lanes(junction)
    assert {i for t in through for _, links in by_phase[t] for i in links} == turns
    rules = SafetyRules(min_green_s=5, yellow_s=3, all_red_s=0, max_red_s=120)

    def shown(stuck: int | None) -> list[str]:
        head = SignalHead(states, rules)
        out = []
        for t in range(600):
            if t % 4 == 0:
                green = {i for _, links in by_phase[head.phase] for i in links}
                head.stall({stuck: 100.0} if stuck in green and t >= 100 else {})
            head.request(through[(t // 20) % 2])
            out.append(head.tick(float(t), [True] * len(states[0])))
        return out

    moving = shown(None)
    assert not {states[i] for i in lefts} & set(moving)
    for link, lanes in enumerate(junction.link_lanes):
        green = [t for t, s in enumerate(moving) if s[link] in "Gg"]
        assert lanes
        assert green
        assert max(b - a for a, b in pairwise(green)) <= 120
    turn = min(turns)
    stuck = shown(turn)
    protecting = [t for t, s in enumerate(stuck) if s[turn] == "G"]
    assert protecting
    assert 100 + rules.stalled_turn_s < protecting[0] <= 100 + rules.max_red_s


def test_permissive_turns_are_watched_at_the_stop_line_and_inside_the_junction() -> None:
    # Link 1 turns permissively in phase 0 and is protected in phase 1; links 0 and 1 leave
    # lane "a". A turner may wait on "a" or pulled forward on its own internal lane ":J_1_1";
    # ":J_x" is shared with link 0, so a vehicle there says nothing about the turn.
    phases = (PhaseInfo("Gg", ()), PhaseInfo("rG", ()))
    junction = Junction("J", phases, ("a",), ("x",),
                        box_lanes=((":J_0_0", ":J_x"), (":J_1_0", ":J_1_1", ":J_x")),
                        link_lanes=(("a",), ("a",)))
    through, left = permissive_lanes(junction)
    assert dict(through) == {"a": frozenset({1}), ":J_1_0": frozenset({1}),
                             ":J_1_1": frozenset({1})}
    assert left == ()  # nothing in the protected phase can stall
