"""What the twin knows of each signalised junction: its links, green phases and lanes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityhub.brain.observations import PhaseInfo
from cityhub.brain.safety import GREEN


@dataclass(frozen=True)
class Junction:
    """A traffic-light junction: green phases (from its program), incoming and outgoing lanes."""

    tls_id: str
    phases: tuple[PhaseInfo, ...]
    incoming: tuple[str, ...]
    outgoing: tuple[str, ...]
    box_lanes: tuple[tuple[str, ...], ...] = ()
    """Per link index: the internal lanes a vehicle crosses the junction on (for clearance)."""
    link_lanes: tuple[tuple[str, ...], ...] = ()
    """Per link index: the incoming lanes its vehicles wait on (one link index may stand for
    connections from several lanes; none for an unused index), for the signal layer's
    per-link maximum red."""

    def clearing_lanes(self, current: str, target: str) -> tuple[str, ...]:
        """Internal lanes of the links green in `current` and not in `target`."""
        return tuple(dict.fromkeys(
            lane for i, (now, nxt) in enumerate(zip(current, target, strict=True))
            if now in GREEN and nxt not in GREEN and i < len(self.box_lanes)
            for lane in self.box_lanes[i]
        ))


def permissive_lanes(junction: Junction) -> tuple[tuple[tuple[str, frozenset[int]], ...], ...]:
    """Per green phase: each lane with the links through it that the phase lets go
    permissively (`g`) and another phase protects (`G`): the turns that may stall there. The
    lanes are the incoming lanes and the links' lanes inside the junction, where a turner
    that has pulled forward waits for its gap."""
    states = [p.state for p in junction.phases]
    protected = {i for state in states for i, c in enumerate(state) if c == "G"}
    owners: dict[str, int] = {}
    for lanes in junction.box_lanes:
        for lane in lanes:
            owners[lane] = owners.get(lane, 0) + 1
    out = []
    for state in states:
        by_lane: dict[str, set[int]] = {}
        for i, c in enumerate(state):
            if c != "g" or i not in protected:
                continue
            inside = junction.box_lanes[i] if i < len(junction.box_lanes) else ()
            before = junction.link_lanes[i] if i < len(junction.link_lanes) else ()
            for lane in before:
                by_lane.setdefault(lane, set()).add(i)
            for lane in inside:
                if owners[lane] == 1:  # the link's own lane inside the junction
                    by_lane[lane] = {i}
        out.append(tuple((lane, frozenset(links)) for lane, links in by_lane.items()))
    return tuple(out)


def _box_lanes(api: Any, group: Any) -> tuple[str, ...]:
    """The internal lanes of one link: its `via` lane and the internal lanes that follow it."""
    out: list[str] = []
    todo = [link[2] for link in group if link[2]]
    while todo:
        lane = todo.pop()
        if lane in out or not lane.startswith(":"):
            continue
        out.append(lane)
        todo.extend(succ[0] for succ in api.lane.getLinks(lane))
    return tuple(out)


def read_junctions(api: Any) -> list[Junction]:
    """Green phases are the program's phases with a green and no yellow, de-duplicated."""
    junctions = []
    for tls in api.trafficlight.getIDList():
        links = api.trafficlight.getControlledLinks(tls)
        logic = api.trafficlight.getAllProgramLogics(tls)[0]
        seen: dict[str, float] = {}
        for phase in logic.phases:
            state = phase.state
            if "y" in state.lower() or not any(c in GREEN for c in state):
                continue
            if state not in seen:
                seen[state] = float(phase.duration)
        pairs = [[(link[0], link[1]) for link in group] for group in links]
        phases = [PhaseInfo.from_links(state, pairs, duration) for state, duration in seen.items()]
        if not phases:
            continue
        incoming = tuple(dict.fromkeys(link[0] for group in links for link in group))
        outgoing = tuple(dict.fromkeys(link[1] for group in links for link in group))
        junctions.append(Junction(tls, tuple(phases), incoming, outgoing,
                                  tuple(_box_lanes(api, group) for group in links),
                                  tuple(tuple(dict.fromkeys(link[0] for link in group))
                                        for group in links)))
    return junctions
