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
        phases = []
        for state, duration in seen.items():
            movements = tuple(dict.fromkeys(
                (link[0], link[1])
                for index, char in enumerate(state) if char in GREEN and index < len(links)
                for link in links[index]
            ))
            phases.append(PhaseInfo(state, movements, duration))
        if not phases:
            continue
        incoming = tuple(dict.fromkeys(link[0] for group in links for link in group))
        outgoing = tuple(dict.fromkeys(link[1] for group in links for link in group))
        junctions.append(Junction(tls, tuple(phases), incoming, outgoing))
    return junctions
