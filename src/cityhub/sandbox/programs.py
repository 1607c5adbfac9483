"""SUMO's own actuation for `actuated`: the network's programs re-typed as actuated, loaded as an
additional file (which SUMO then runs in place of the static one)."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

MIN_GREEN_S = 5
MAX_GREEN_S = 60


def actuated_programs(net: Path, out: Path) -> Path:
    """Write `out` with every static program of `net` as an actuated one (gap-based)."""
    import sumolib

    network = sumolib.net.readNet(str(net), withPrograms=True)
    lines = ["<additional>"]
    for tls in network.getTrafficLights():
        for program in tls.getPrograms().values():
            lines.append(
                f"  <tlLogic id={quoteattr(tls.getID())} type=\"actuated\" "
                f"programID=\"cityhub-actuated\" offset=\"0\">"
            )
            for phase in program.getPhases():
                state = phase.state
                green = "y" not in state.lower() and any(c in "Gg" for c in state)
                if green:
                    longest = max(MAX_GREEN_S, phase.duration)
                    lines.append(
                        f"    <phase duration=\"{phase.duration:g}\" state=\"{state}\" "
                        f"minDur=\"{MIN_GREEN_S}\" maxDur=\"{longest:g}\"/>"
                    )
                else:
                    lines.append(f"    <phase duration=\"{phase.duration:g}\" state=\"{state}\"/>")
            lines.append("  </tlLogic>")
            break
    lines.append("</additional>")
    out.write_text("\n".join(lines) + "\n")
    return out
