"""The twin's control loop: run a scenario with a controller, through the signal layer.

Per simulated second: at each decision time, observe every junction (lane queues, vehicles,
waiting times), let the controller decide, hand the wishes to each junction's `SignalHead`, and
apply the safe state it returns. Native controllers (`fixed`, `actuated`) leave SUMO's own
programs running. Samples queues every 5 s and road speeds every 60 s (congestion index).
"""

from __future__ import annotations

import gc
import heapq
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityhub.brain.congestion import IndexHistory, RoadReading, indices_by_area
from cityhub.brain.controllers import Controller
from cityhub.brain.observations import JunctionObservation
from cityhub.brain.safety import SafetyRules, SignalHead, Stage
from cityhub.sandbox.detectors import near_detectors
from cityhub.sandbox.lane_view import ApproachChain, ApproachView, LaneView, NearView
from cityhub.sandbox.scenarios import Scenario
from cityhub.sandbox.simulator import Simulator, start
from cityhub.sandbox.topology import Junction, permissive_lanes, read_junctions

log = logging.getLogger(__name__)

QUEUE_SAMPLE_S = 5.0
ROAD_SAMPLE_S = 60.0


@dataclass
class RunRecord:
    """Everything a run measured, before metrics are derived from it."""

    sumo_version: str = ""
    backend: str = ""
    queue_series: list[tuple[float, int, int]] = field(default_factory=list)
    junction_queue: dict[str, list[int]] = field(default_factory=dict)
    switches: dict[str, int] = field(default_factory=dict)
    congestion: IndexHistory = field(default_factory=IndexHistory)
    wall_s: float = 0.0
    control_s: float = 0.0
    loop_s: float = 0.0
    """The control loop's duration on the clock `control_s` is measured with (`clock`)."""
    clock: str = "wall"


@dataclass(frozen=True)
class Road:
    edge_id: str
    length_m: float
    free_flow_kmh: float
    area: str


Observer = Callable[["Twin", float], None]
Signal = tuple[str, SignalHead, Junction]
"""A signalised junction's id, its signal head and what the twin knows of it."""


def sumo_args(scenario: Scenario, seed: int, end: float, tripinfo: Path,
              additional: list[Path]) -> list[str]:
    """RESCO's options (teleporting off, unfinished trips written) with a fixed seed."""
    args = [
        "-c", str(scenario.config), "--seed", str(seed), "--time-to-teleport", "-1",
        "--tripinfo-output", str(tripinfo), "--tripinfo-output.write-unfinished",
        "--end", f"{end:g}", "--no-step-log", "--no-warnings", "--duration-log.disable",
    ]
    if additional:
        args += ["--additional-files", ",".join(str(p) for p in additional)]
    return args


class Twin:
    """One running simulation with its junctions, signal heads and samples."""

    def __init__(self, sim: Simulator, controller: Controller, rules: SafetyRules,
                 net: Path, begin: float, near_ids: Mapping[str, str] | None = None) -> None:
        self.sim = sim
        self.net = net
        self.begin = begin
        self.api = sim.api
        self.controller = controller
        self.rules = rules
        self.junctions = read_junctions(self.api)
        self.lane_length = {
            lane: float(self.api.lane.getLength(lane))
            for j in self.junctions for lane in (*j.incoming, *j.outgoing)
        }
        reach = float(controller.config.get("approach_m", 0.0))
        self.feeders = upstream_feeders(self.api, self.junctions, self.lane_length, reach)
        for _, chain in self.feeders.values():
            for lane, _ in chain:
                self.lane_length.setdefault(lane, float(self.api.lane.getLength(lane)))
        self.watched = tuple(self.lane_length)
        self.link_lanes = {j.tls_id: j.link_lanes for j in self.junctions}
        self.due: dict[str, float] = {}
        self._reads = sim.lane_reads()
        self.lanes = LaneView(self._reads, {})
        self.near_ids = dict(near_ids or {})
        self.looked: set[str] = set()
        """Junctions given an early look since the last decision (one each, at most)."""
        self.vehicle_count = sim.native("lane_getLastStepVehicleNumber",
                                        self.api.lane.getLastStepVehicleNumber)
        self._vehicle_ids = sim.native("lane_getLastStepVehicleIDs",
                                       self.api.lane.getLastStepVehicleIDs)
        self._next_tls = sim.native("vehicle_getNextTLS", self.api.vehicle.getNextTLS)
        self._waiting_time = sim.native("vehicle_getWaitingTime",
                                        self.api.vehicle.getWaitingTime)
        self._halted = sim.native("lane_getLastStepHaltingNumber",
                                  self.api.lane.getLastStepHaltingNumber)
        """Any lane's halted vehicles (the lane reads cover the watched lanes only)."""
        self.permissive = {j.tls_id: permissive_lanes(j) for j in self.junctions}
        self._fronts: dict[str, tuple[str, float]] = {}
        """Per lane with a permissive turn: its first vehicle and when it first stopped."""
        self._near_read = sim.detector_count()
        self._near: tuple[float, NearView | None] = (float("nan"), None)
        self.wake: list[tuple[float, str]] = []
        self.heads: dict[str, SignalHead] = {}
        self.by_id = {j.tls_id: j for j in self.junctions}
        self._clearing: dict[tuple[str, int, int], tuple[str, ...]] = {}
        self._set_state = sim.native("trafficlight_setRedYellowGreenState",
                                     self.api.trafficlight.setRedYellowGreenState)
        self._signals: list[Signal] = []
        self.area_split = (0.0, 0.0)
        self.shown: dict[str, str] = {}
        self.demand: dict[str, tuple[bool, ...] | None] = {}
        self.roads = self._roads()
        self.record = RunRecord(sumo_version=sim.version, backend=sim.backend)

    def _roads(self) -> list[Road]:
        edges = [e for e in self.api.edge.getIDList() if not e.startswith(":")]
        shapes = {}
        for edge in edges:
            lane = f"{edge}_0"
            shape = self.api.lane.getShape(lane)
            shapes[edge] = (shape[len(shape) // 2], float(self.api.lane.getLength(lane)),
                            float(self.api.lane.getMaxSpeed(lane)) * 3.6)
        if not shapes:
            return []
        xs = sorted(p[0][0] for p in shapes.values())
        ys = sorted(p[0][1] for p in shapes.values())
        mid_x, mid_y = xs[len(xs) // 2], ys[len(ys) // 2]
        self.area_split = (mid_x, mid_y)
        return [
            Road(edge, length, speed, ("north" if mid[1] >= mid_y else "south")
                 + ("east" if mid[0] >= mid_x else "west"))
            for edge, (mid, length, speed) in shapes.items()
        ]

    def _take_over(self, now: float) -> None:
        for junction in self.junctions:
            state = self.api.trafficlight.getRedYellowGreenState(junction.tls_id)
            states = [p.state for p in junction.phases]
            first = states.index(state) if state in states else 0
            head = SignalHead(states, self.rules, now=now, start=first)
            self.heads[junction.tls_id] = head
            self.shown[junction.tls_id] = states[first]
            self.api.trafficlight.setRedYellowGreenState(junction.tls_id, states[first])
        self._signals = [(j.tls_id, self.heads[j.tls_id], j) for j in self.junctions]

    def _near_view(self, now: float) -> NearView | None:
        """The stop-line detector counts at `now` (None without detectors): one view per step,
        shared by the look between decisions and the decision it triggers."""
        if not self.near_ids:
            return None
        when, view = self._near
        if when != now or view is None:
            view = NearView(self._near_read, self.near_ids)
            self._near = (now, view)
        return view

    def observe(self, now: float, signals: list[Signal] | None = None,
                ) -> dict[str, JunctionObservation]:
        """The junctions (of `signals`, default all) the controller wants to look at now. A
        lane's values are read when the controller first asks for them (`LaneView`), not all
        of them every decision."""
        needs = self.controller.needs_observation
        lanes = self.lanes = LaneView(self._reads, self.lane_length)
        approach = ApproachView(self.feeders, lanes) if self.feeders else None
        near = self._near_view(now)
        green = Stage.GREEN
        out = {}
        for tls, head, junction in self._signals if signals is None else signals:
            on = head.stage is green
            elapsed = now - head.since if on else 0.0  # SignalHead.green_elapsed, inlined
            if not needs(on, elapsed):
                continue
            out[tls] = JunctionObservation(
                tls, now, junction.phases, lanes,
                phase=head.phase if on else None,
                phase_elapsed_s=elapsed,
                target=head.target,
                approach=approach, near=near,
            )
        return out

    def _gapped_out(self, now: float) -> list[Signal]:
        """Between decisions: the junctions whose green the controller says is no longer used
        (`Controller.gapped_out`, from the stop-line detectors), in the order of `_signals`."""
        near = self._near_view(now)
        if near is None:
            return []
        check, looked, green = self.controller.gapped_out, self.looked, Stage.GREEN
        started = now - self.rules.min_green_s  # a green younger than that cannot end yet
        out = []
        for signal in self._signals:
            tls, head, junction = signal
            if head.stage is not green or head.since > started or head.requested != head.phase \
                    or tls in looked:
                continue
            if check(junction.phases[head.phase], now - head.since, near, junction.incoming):
                out.append(signal)
        return out

    def _demand(self, tls: str, late: tuple[int, ...],
                stalled: frozenset[int]) -> tuple[bool, ...] | None:
        """Per link: is a vehicle on its incoming lane headed through it (max-red rule). Only
        the `late` links can be served by that rule before the next decision: the others count
        as without demand, and None when no late link is waited for. A vehicle's link is the
        one its route takes at this signal (`getNextTLS`), so a shared lane's through traffic
        does not make its turn look waiting. A `stalled` link is waited for by the vehicle
        that stalled it, which may stand inside the junction already."""
        if not late:
            return None
        lanes, count = self.link_lanes[tls], self.vehicle_count
        ids, ahead = self._vehicle_ids, self._next_tls
        wanted = frozenset(late)
        demand = [i in stalled and i in wanted for i in range(len(lanes))]
        for lane in dict.fromkeys([lane for i in late for lane in lanes[i]]):
            if not count(lane):
                continue
            for vehicle in ids(lane):
                signals = ahead(vehicle)
                if signals and signals[0][0] == tls and signals[0][1] in wanted:
                    demand[signals[0][1]] = True
        return tuple(demand) if True in demand else None

    def _stalled(self, tls: str, head: SignalHead,
                 now: float) -> tuple[dict[int, float], dict[int, float]]:
        """The permissive links of the green showing whose first vehicle has stopped, with
        when it first stopped there (`SignalHead.stall`): a turn waiting for a gap that does
        not come, at the stop line or pulled forward inside the junction. The same vehicle at
        the front keeps its first stop (it may creep and stop again); only a lane's first
        vehicle is read: the others wait for it. Two mappings: at the stop line, inside."""
        lanes = self.permissive[tls][head.phase] if head.stage is Stage.GREEN else ()
        if not lanes:
            return {}, {}
        halted, ids, ahead, waited = (self._halted, self._vehicle_ids, self._next_tls,
                                      self._waiting_time)
        fronts = self._fronts
        at_line: dict[int, float] = {}
        inside: dict[int, float] = {}
        for lane, links in lanes:
            if not halted(lane):
                continue
            first = ids(lane)[-1]  # SUMO lists a lane's vehicles from the back to the front
            if lane[0] == ":":  # inside the junction, on a lane of these links only
                link = min(links)
            else:
                signals = ahead(first)
                if not signals or signals[0][0] != tls or signals[0][1] not in links:
                    continue
                link = signals[0][1]
            known = fronts.get(lane)
            if known is not None and known[0] == first:
                since = known[1]
            else:
                stopped = float(waited(first))
                if stopped <= 0:
                    continue
                since = now - stopped
                fronts[lane] = (first, since)
            out = inside if lane[0] == ":" else at_line
            out[link] = min(since, out.get(link, since))
        return at_line, inside

    def _decide(self, now: float, signals: list[Signal]) -> None:
        """Observe `signals`, let the controller decide, and hand each junction's wish and
        max-red demand to its head; a head given something new is due as soon as its state
        may change (`SignalHead.quiet_until`: at once, or at the end of its yellow, or when a
        waiting link reaches the maximum red)."""
        observations = self.observe(now, signals)
        wishes = self.controller.decide(observations)
        horizon = now + self.controller.decision_interval_s
        wake, due, demands = self.wake, self.due, self.demand
        push, inf = heapq.heappush, float("inf")
        for tls, head, _ in signals:
            # A junction left unobserved keeps its course (see `needs_observation`).
            wish = wishes.get(tls, head.target)
            at_line, inside = self._stalled(tls, head, now)
            if at_line or inside or head.stalled:
                head.stall(at_line, inside)
            demand = self._demand(tls, head.late_links(horizon), head.stalled)
            if wish == head.requested and demand == demands.get(tls):
                continue  # nothing new: its wake-up time stands
            head.request(wish)
            demands[tls] = demand
            # Due when its state may change with the new wish and demand: now at the earliest,
            # later for a yellow or a green that keeps its course (`SignalHead.quiet_until`).
            when = head.quiet_until(demand)
            if when < now:
                when = now
            due[tls] = when
            if when != inf:
                push(wake, (when, tls))

    def _control(self, now: float, decide: bool, check: bool = False) -> None:
        """Decide (at decision times) and tick the signal heads that are due. A head whose
        green cannot change before a later time (`SignalHead.quiet_until`) is not ticked until
        then (a heap of wake-up times): the same states, for a fraction of the calls."""
        if decide:
            self.looked.clear()
            self._decide(now, self._signals)
        elif check:
            early = self._gapped_out(now)
            if early:
                self.looked.update(tls for tls, _, _ in early)
                self._decide(now, early)
        wake = self.wake
        if not wake or wake[0][0] > now:
            return
        due, heads, shown, demands = self.due, self.heads, self.shown, self.demand
        set_state = self._set_state
        pop, push, inf = heapq.heappop, heapq.heappush, float("inf")
        while wake and wake[0][0] <= now:
            when, tls = pop(wake)
            if due.get(tls) != when:
                continue  # superseded by a later push
            head = heads[tls]
            clear = self._box_clear(tls, head) if head.needs_box(now) else True
            demand = demands.get(tls)
            state = head.tick(now, demand, clear)
            again = head.quiet_until(demand)
            if again < now + 1:
                again = now + 1
            due[tls] = again
            if again != inf:
                push(wake, (again, tls))
            if state != shown[tls]:
                set_state(tls, state)
                shown[tls] = state

    def next_event(self) -> float:
        """When a signal head is next due (inf: none). Between decisions and looks, a step
        before that time has nothing to control."""
        return self.wake[0][0] if self.wake else float("inf")

    def _box_clear(self, tls: str, head: SignalHead) -> bool:
        """No vehicle of the links losing their green is still inside the junction."""
        key = (tls, head.phase, head.target)
        lanes = self._clearing.get(key)
        if lanes is None:
            junction = self.by_id[tls]
            lanes = junction.clearing_lanes(head.phases[head.phase], head.phases[head.target])
            self._clearing[key] = lanes
        count = self.vehicle_count
        for lane in lanes:  # noqa: SIM110 - a plain loop, no generator: ~5,000 checks an hour
            if count(lane):
                return False
        return True

    def _sample_queues(self, now: float) -> None:
        lane_api = self.api.lane
        total = 0
        for junction in self.junctions:
            queue = sum(int(lane_api.getLastStepHaltingNumber(x)) for x in junction.incoming)
            self.record.junction_queue.setdefault(junction.tls_id, []).append(queue)
            total += queue
        self.record.queue_series.append(
            (now, total, int(self.api.vehicle.getIDCount())))

    def road_readings(self, interval_s: float) -> list[RoadReading]:
        edge_api = self.api.edge
        readings = []
        for road in self.roads:
            count = int(edge_api.getLastStepVehicleNumber(road.edge_id))
            if count == 0:
                continue
            speed = float(edge_api.getLastStepMeanSpeed(road.edge_id)) * 3.6
            readings.append(RoadReading(road.edge_id, speed, road.free_flow_kmh,
                                        count * speed * interval_s / 3600.0, road.area))
        return readings

    def run(self, begin: float, end: float, progress: Callable[[float], None] | None = None,
            observer: Observer | None = None, observer_every_s: float = 60.0) -> RunRecord:
        # libsumo steps SUMO on this thread: the thread's CPU time splits simulation from
        # control without counting what other processes on a shared machine take. Not the
        # process's CPU time: that also counts the progress bar's thread, and while the test
        # suite loaded the machine a read of it cost 69 µs on average (5 µs for the thread's),
        # paid twice per controlled step, half in the control time. Over TraCI, SUMO is
        # another process: wall time.
        clock = time.thread_time if self.sim.backend == "libsumo" else time.perf_counter
        self.record.clock = "thread-cpu" if clock is time.thread_time else "wall"
        # The objects that exist now (the network, the plans, every imported module) live as
        # long as the run: frozen, a full collection no longer walks them. One such pass over
        # the ~150,000 objects of a CLI run cost 52-90 ms, and fell inside grid4x4's control
        # time (a tenth of it) where the loop's allocations happened to set it off.
        gc.freeze()
        try:
            return self._loop(begin, end, clock, progress, observer, observer_every_s)
        finally:
            gc.unfreeze()

    def _loop(self, begin: float, end: float, clock: Callable[[], float],
              progress: Callable[[float], None] | None, observer: Observer | None,
              observer_every_s: float) -> RunRecord:
        api = self.api
        started, loop_started = time.perf_counter(), clock()
        native = self.controller.native_program is not None
        if not native:
            self._take_over(begin)
            self.sim.watch(self.watched, self.near_ids.values())
        interval = self.controller.decision_interval_s
        check_every = self.controller.gap_check_s if self.near_ids else 0.0
        now = float(api.simulation.getTime())
        next_decision = next_check = now
        next_queue = now + QUEUE_SAMPLE_S
        next_road = now + ROAD_SAMPLE_S
        next_observer = now + observer_every_s
        while now < end:
            if native:
                api.simulationStep(min(end, next_queue, next_road))
            else:
                decide = now >= next_decision
                check = bool(check_every) and now >= next_check
                if decide or check or now >= self.next_event():  # else nothing to control
                    tick = clock()
                    self._control(now, decide, check)
                    if decide:
                        next_decision = now + interval
                    if check:
                        next_check = now + check_every
                    self.record.control_s += clock() - tick
                api.simulationStep()
            now = float(api.simulation.getTime())
            if now >= next_queue:
                self._sample_queues(now)
                next_queue += QUEUE_SAMPLE_S
            if now >= next_road:
                self.record.congestion.add(now, indices_by_area(self.road_readings(ROAD_SAMPLE_S)))
                next_road += ROAD_SAMPLE_S
                if progress is not None:
                    progress(now)
            if observer is not None and now >= next_observer:
                observer(self, now)
                next_observer += observer_every_s
        self.record.switches = {tls: h.switches for tls, h in self.heads.items()}
        self.record.loop_s = clock() - loop_started
        self.record.wall_s = time.perf_counter() - started
        return self.record


def upstream_feeders(api: Any, junctions: list[Junction], lane_length: dict[str, float],
                     reach_m: float) -> dict[str, ApproachChain]:
    """Per incoming lane shorter than `reach_m`: the lanes upstream of it, within `reach_m` of
    the stop line, with the share of each feeder's vehicles that heads for it (1 / the number
    of lanes the feeder leads to), and the approach's length (its longest path). Another
    junction's incoming lanes are not followed."""
    if reach_m <= 0:
        return {}
    feeds: dict[str, list[str]] = {}
    successors: dict[str, int] = {}
    for lane in api.lane.getIDList():
        if lane.startswith(":"):
            continue
        targets = {link[0] for link in api.lane.getLinks(lane)}
        successors[lane] = len(targets)
        for target in targets:
            feeds.setdefault(target, []).append(lane)
    stop = {lane for j in junctions for lane in j.incoming}
    out: dict[str, ApproachChain] = {}
    for lane in sorted(stop):
        chain: dict[str, float] = {}
        longest = lane_length[lane]
        frontier = [(lane, 1.0, longest)]
        while frontier:
            here, share, distance = frontier.pop()
            longest = max(longest, distance)
            if distance >= reach_m:
                continue
            for up in feeds.get(here, ()):
                if up in stop or up in chain or up == lane:
                    continue
                weight = share / max(successors.get(up, 1), 1)
                chain[up] = weight
                length = float(api.lane.getLength(up))
                frontier.append((up, weight, distance + length))
        if chain:
            out[lane] = (longest, tuple(chain.items()))
    return out


def simulate(scenario: Scenario, controller: Controller, seed: int, end: float, out: Path,
             rules: SafetyRules, sumo_home: Path | None = None,
             progress: Callable[[float], None] | None = None,
             observer: Observer | None = None, additional: list[Path] | None = None,
             ) -> tuple[RunRecord, Path]:
    """Start SUMO, run the loop, close; returns the record and the tripinfo file."""
    from cityhub.sandbox.programs import actuated_programs

    out.mkdir(parents=True, exist_ok=True)
    extra = list(additional or [])
    if controller.native_program == "actuated":
        extra.append(actuated_programs(scenario.net, out / "actuated.add.xml"))
    near_ids: dict[str, str] = {}
    if controller.native_program is None and controller.near_range_m > 0:
        detectors, near_ids = near_detectors(scenario.net, out / "near.add.xml",
                                             controller.near_range_m)
        extra.append(detectors)
    tripinfo = out / "tripinfo.xml"
    wall = time.perf_counter()
    sim = start(sumo_args(scenario, seed, end, tripinfo, extra), sumo_home)
    try:
        twin = Twin(sim, controller, rules, scenario.net, scenario.begin, near_ids)
        record = twin.run(scenario.begin, end, progress, observer)
    finally:
        sim.close()
    record.wall_s = time.perf_counter() - wall
    log.info("run_done scenario=%s controller=%s seed=%d wall_s=%.2f",
             scenario.name, controller.name, seed, record.wall_s)
    return record, tripinfo
