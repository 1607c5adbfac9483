"""RESCO's delay definition from tripinfo, unfinished vehicles included."""

from __future__ import annotations

from pathlib import Path

from cityhub.sandbox.metrics import trip_metrics

TRIPINFO = """<tripinfos>
  <tripinfo id="a" depart="0" departDelay="2" arrival="60" duration="60" timeLoss="10"
            waitingTime="4"/>
  <tripinfo id="b" depart="5" departDelay="0" arrival="-1" duration="100" timeLoss="40"
            waitingTime="30"/>
</tripinfos>
"""


def test_delay_is_time_loss_plus_depart_delay_over_all_entries(tmp_path: Path) -> None:
    path = tmp_path / "tripinfo.xml"
    path.write_text(TRIPINFO)
    metrics = trip_metrics(path)
    assert metrics["avg_delay_s"] == (12 + 40) / 2
    assert metrics["avg_trip_time_s"] == 80
    assert metrics["avg_wait_s"] == 17
    assert metrics["throughput_veh"] == 1
    assert metrics["unfinished_veh"] == 1
