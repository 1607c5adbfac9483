"""The live control loop: the same controllers and signal layer, against the hub's entities.

TrafficFlowObserved in (one per signalised lane, as the twin or real loops publish them),
TrafficSignal commands out (`currentPhase`, `phaseState`). The junction layout (phases, which lane
feeds which) comes from the district's SUMO network. A controller version nobody approved in the
algorithm registry is refused before anything runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from cityhub.brain.controllers import Controller
from cityhub.brain.observations import JunctionObservation, LaneState, PhaseInfo
from cityhub.brain.safety import GREEN, SafetyRules, SignalHead, Stage
from cityhub.sandbox.entities import stamp, urn
from cityhub.sandbox.registry import AlgorithmRegistry
from cityhub.sandbox.topology import Junction

log = logging.getLogger(__name__)
STOPPED_KMH = 5.0


def junctions_from_net(net: Path) -> list[Junction]:
    """Signalised junctions of a SUMO network file, read with sumolib (no simulation)."""
    import sumolib

    network = sumolib.net.readNet(str(net), withPrograms=True)
    out = []
    for tls in network.getTrafficLights():
        links: dict[int, list[tuple[str, str]]] = {}
        for incoming, outgoing, index in tls.getConnections():
            links.setdefault(index, []).append((incoming.getID(), outgoing.getID()))
        program = next(iter(tls.getPrograms().values()))
        phases: dict[str, PhaseInfo] = {}
        for phase in program.getPhases():
            state = phase.state
            if "y" in state.lower() or not any(c in GREEN for c in state) or state in phases:
                continue
            by_index = [links.get(i, []) for i in range(len(state))]
            phases[state] = PhaseInfo.from_links(state, by_index, float(phase.duration))
        if phases:
            pairs = [m for group in links.values() for m in group]
            width = len(next(iter(phases)))
            out.append(Junction(tls.getID(), tuple(phases.values()),
                                tuple(dict.fromkeys(i for i, _ in pairs)),
                                tuple(dict.fromkeys(o for _, o in pairs)),
                                link_lanes=tuple(tuple(dict.fromkeys(i for i, _ in
                                                                     links.get(n, [])))
                                                 for n in range(width))))
    return out


def lane_states(flows: list[dict[str, Any]]) -> dict[str, LaneState]:
    """Estimate lane states from TrafficFlowObserved (keyValues): vehicles counted in the period,
    all counted as queued when the loop saw them crawl (mean speed under 5 km/h)."""
    out = {}
    for flow in flows:
        lane = flow.get("laneId")
        if not isinstance(lane, str):
            continue
        count = int(flow.get("intensity") or 0)
        speed = float(flow.get("averageVehicleSpeed") or 0.0)
        occupancy = float(flow.get("occupancy") or 0.0)
        queued = count if (count and speed < STOPPED_KMH) or occupancy > 0.5 else 0
        out[lane] = LaneState(queued, max(count, queued))
    return out


class LiveSignalLoop:
    """Drives the hub's TrafficSignal entities of `district` with an approved controller."""

    def __init__(self, hub: str, district: str, net: Path, controller: Controller,
                 registry: AlgorithmRegistry, rules: SafetyRules | None = None,
                 client: httpx.Client | None = None) -> None:
        registry.require_approved(controller)
        self.base = hub.rstrip("/") + "/ngsi-ld/v1"
        self.district = district
        self.controller = controller
        self.rules = rules or SafetyRules()
        self.client = client or httpx.Client(timeout=10.0)
        self.junctions = junctions_from_net(net)
        self.links = {j.tls_id: j.link_lanes for j in self.junctions}
        self.heads: dict[str, SignalHead] = {}
        self.next_decision = 0.0
        self.demand: dict[str, tuple[bool, ...]] = {}

    def close(self) -> None:
        self.client.close()

    def _flows(self) -> list[dict[str, Any]]:
        answer = self.client.get(f"{self.base}/entities", params={
            "type": "TrafficFlowObserved", "options": "keyValues", "limit": 1000})
        answer.raise_for_status()
        flows: list[dict[str, Any]] = answer.json()
        prefix = urn("TrafficFlowObserved", self.district, "")
        return [f for f in flows if str(f.get("id", "")).startswith(prefix)]

    def step(self, now: float, moment: Any) -> dict[str, str]:
        """One second of control at `now` (seconds) / `moment` (UTC datetime): the states set."""
        for junction in self.junctions:
            if junction.tls_id not in self.heads:
                self.heads[junction.tls_id] = SignalHead(
                    [p.state for p in junction.phases], self.rules, now=now)
        if now >= self.next_decision:
            lanes = lane_states(self._flows())
            observations = {}
            for junction in self.junctions:
                head = self.heads[junction.tls_id]
                green = head.stage is Stage.GREEN
                observations[junction.tls_id] = JunctionObservation(
                    junction.tls_id, now, junction.phases, lanes,
                    phase=head.phase if green else None,
                    phase_elapsed_s=head.green_elapsed(now), target=head.target)
            for tls, wish in self.controller.decide(observations).items():
                self.heads[tls].request(wish)
                seen = observations[tls]
                self.demand[tls] = tuple(any(seen.lane(lane).vehicles > 0 for lane in lanes)
                                         for lanes in self.links[tls])
            self.next_decision = now + self.controller.decision_interval_s
        states = {tls: head.tick(now, self.demand.get(tls)) for tls, head in self.heads.items()}
        at = stamp(moment)
        batch = [{
            "id": urn("TrafficSignal", self.district, tls), "type": "TrafficSignal",
            "currentPhase": {"type": "Property", "value": self.heads[tls].phase,
                             "observedAt": at},
            "phaseState": {"type": "Property", "value": state, "observedAt": at},
            "controller": {"type": "Property", "value": self.controller.identity},
        } for tls, state in states.items()]
        answer = self.client.post(f"{self.base}/entityOperations/upsert",
                                  params={"options": "update"}, json=batch)
        answer.raise_for_status()
        return states
