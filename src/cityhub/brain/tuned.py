"""`cityhub@2.2`: v2.1 (`detecting.py`) that counts a shared lane as served by the phase that
protects one of its movements.

v2.0 and v2.1 say a phase serves the share of a lane's movements it lets go, a permissive (`g`)
one counting `permissive_weight` (0.5). A lane shared by protected movements and a permissive
one is then served 0.75-0.83 by its phase: leaving the phase gives up only part of the lane's
queue, and a phase protecting every movement of one approach gains the rest. v2.2 counts a
permissive movement as served in full on a lane where the same phase protects another movement
(the lane's vehicles go, a turner waiting for a gap aside: arterial4x4, whose crossing
arterials meet on such lanes, 716 -> 664 s), and keeps `permissive_weight` for lanes whose only
green in the phase is permissive (a dedicated turn lane waits for gaps in the opposing flow;
raising the weight for every lane gridlocked ingolstadt21).
"""

from __future__ import annotations

from dataclasses import replace

from cityhub.brain.adaptive import PhasePlan, phase_plan
from cityhub.brain.controllers import register
from cityhub.brain.detecting import CityhubDetecting
from cityhub.brain.observations import PhaseInfo


def shared_lanes_protected(phase: PhaseInfo) -> PhaseInfo:
    """`phase` with its permissive movements counted as protected on the lanes where it
    protects another movement (the phase itself when there are none)."""
    protected_lanes = {lane for lane, _ in phase.protected}
    shared = tuple(m for m in phase.movements
                   if m[0] in protected_lanes and m not in phase.protected)
    return replace(phase, protected=phase.protected + shared) if shared else phase


class CityhubShared(CityhubDetecting):
    """v2.1 with a shared lane served in full by the phase that protects one of its movements."""

    name = "cityhub"
    version = "2.2"

    def _build_plan(self, phases: tuple[PhaseInfo, ...]) -> PhasePlan:
        return phase_plan(tuple(shared_lanes_protected(p) for p in phases),
                          self.config["permissive_weight"])


register(CityhubShared)
