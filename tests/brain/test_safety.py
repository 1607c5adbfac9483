"""The signal layer keeps every junction safe whatever a controller asks (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.brain.safety import GREEN, SafetyRules, SignalHead, all_red_state, yellow_state

PHASES = ("GGrrGGrr", "rrGGrrGG", "GrrrGrrr", "rGrrrGrr")
WIDTH = len(PHASES[0])


def _mask(bits: int) -> list[bool]:
    """Per-link demand from the bits of an integer."""
    return [bool(bits >> b & 1) for b in range(WIDTH)]


def _is_green(c: str) -> bool:
    return c in GREEN


def _run(rules: SafetyRules, wishes: list[int], demands: list[list[bool]],
         boxes: list[bool] | None = None) -> list[str]:
    head = SignalHead(PHASES, rules, now=0.0)
    states = []
    for t, (wish, demand) in enumerate(zip(wishes, demands, strict=True)):
        head.request(wish)
        states.append(head.tick(float(t), demand, boxes[t] if boxes else True))
    return states


rules_strategy = st.builds(
    SafetyRules,
    min_green_s=st.integers(1, 12).map(float),
    yellow_s=st.integers(1, 5).map(float),
    all_red_s=st.integers(0, 3).map(float),
    max_red_s=st.integers(40, 120).map(float),
)


@settings(max_examples=60, deadline=None)
@given(rules=rules_strategy, data=st.data())
def test_an_adversarial_controller_never_causes_an_unsafe_transition(
    rules: SafetyRules, data: st.DataObject
) -> None:
    # Wishes held for a random number of seconds; out-of-range ones included: a broken
    # controller must not break the signal either. Demand flags (per link) come as a mask.
    plan = data.draw(st.lists(st.tuples(st.integers(-2, 6), st.integers(1, 15),
                                        st.integers(0, 2 ** WIDTH - 1)), min_size=5, max_size=40))
    wishes = [w for w, hold, _ in plan for _ in range(hold)]
    demands = [_mask(m) for _, hold, m in plan for _ in range(hold)]
    boxes = data.draw(st.lists(st.booleans(), min_size=len(wishes), max_size=len(wishes)))
    states = _run(rules, wishes, demands, boxes)
    width = len(PHASES[0])
    for link in range(width):
        column = [s[link] for s in states]
        for t in range(1, len(column)):
            # A green never turns red directly: yellow comes first, for yellow_s seconds.
            assert not (_is_green(column[t - 1]) and column[t] == "r"), (link, t)
            if column[t] == "y" and column[t - 1] != "y":
                run = 0
                while t + run < len(column) and column[t + run] == "y":
                    run += 1
                if t + run < len(column):
                    assert run == rules.yellow_s, (link, t, run)
                    # After yellow: all_red_s of red before this link or a conflicting one greens.
                    red_run = 0
                    while t + run + red_run < len(column) and column[t + run + red_run] == "r":
                        red_run += 1
                    if t + run + red_run < len(column):
                        assert red_run >= rules.all_red_s
    # Every full green phase lasts at least min_green_s.
    runs: list[tuple[str, int]] = []
    for state in states:
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + 1)
        else:
            runs.append((state, 1))
    for state, length in runs[1:-1]:
        if state in PHASES:
            assert length >= rules.min_green_s, (state, length)


@settings(max_examples=30, deadline=None)
@given(rules=rules_strategy, wish=st.integers(0, 3), steps=st.integers(200, 500),
       waiting=st.integers(1, 2 ** WIDTH - 1))
def test_a_link_with_waiting_vehicles_is_served_within_max_red(
    rules: SafetyRules, wish: int, steps: int, waiting: int
) -> None:
    # A controller that only ever wants one phase: every other link with waiting vehicles
    # still turns green in time.
    demand = _mask(waiting)
    states = _run(rules, [wish] * steps, [demand] * steps)
    # Several links may come due together: each waits at most for the others' phases.
    bound = rules.max_red_s + 3 * (rules.min_green_s + rules.yellow_s + rules.all_red_s)
    for link in range(WIDTH):
        if not demand[link]:
            continue
        green = [t for t, s in enumerate(states) if _is_green(s[link])]
        gaps = [b - a for a, b in zip([0, *green], [*green, steps - 1], strict=True)]
        assert max(gaps) <= bound, (link, max(gaps))


def test_a_link_green_in_the_chosen_phase_does_not_force_its_own_phase() -> None:
    # Links 0 and 4 (phase 2's) are green in phase 0 too: a controller that keeps phase 0
    # serves them, so the max-red rule never shows phase 2 even though its lanes are busy.
    # Links 2 and 3 (phase 1's) are red in phase 0: with waiting vehicles they are served.
    rules = SafetyRules(min_green_s=5, yellow_s=3, all_red_s=1, max_red_s=60)
    steps = 400
    busy = _run(rules, [0] * steps, [_mask(0b00010001)] * steps)
    assert PHASES[2] not in busy
    assert PHASES[1] not in busy
    waiting = _run(rules, [0] * steps, [_mask(0b00001101)] * steps)
    assert PHASES[1] in waiting
    assert PHASES[2] not in waiting
    assert PHASES[3] not in waiting  # greens link 1 and 5, green in phase 0


def test_the_max_red_rule_serves_the_phase_covering_most_waiting_links() -> None:
    # Links 2 and 3 wait red; phase 1 greens both, so it is served (and only phase 1 ever is).
    rules = SafetyRules(min_green_s=5, yellow_s=3, all_red_s=0, max_red_s=40)
    states = _run(rules, [0] * 200, [_mask(0b00001100)] * 200)
    shown = {s for s in states if s in PHASES}
    assert shown == {PHASES[0], PHASES[1]}


def test_a_stalled_permissive_turn_gets_its_protected_phase_within_max_red() -> None:
    # Link 1 goes permissively in phase 0 and is protected in phase 1; the controller only
    # ever wants phase 0. While the turn moves, phase 0 serves it and nothing is forced.
    # Once its first vehicle has stopped (at t=20, and the caller says so at every decision),
    # the turn is due `stalled_turn_s` later: phase 1 shows after that yellow.
    phases = ("GgGr", "rGrr", "rrrG")
    rules = SafetyRules(min_green_s=5, yellow_s=3, all_red_s=0, max_red_s=40)
    demand = [False, True, False, False]
    moving = SignalHead(phases, rules)
    assert {moving.tick(float(t), demand) for t in range(200)} == {phases[0]}
    head = SignalHead(phases, rules)
    shown = []
    for t in range(200):
        if t % 4 == 0:
            head.stall({1: 20.0} if t >= 20 and head.phase == 0 else {})
        shown.append(head.tick(float(t), demand))
    first = shown.index(phases[1])
    assert 20 + rules.stalled_turn_s < first <= 20 + rules.stalled_turn_s + rules.yellow_s
    assert phases[2] not in shown
    # A turner that has pulled forward into the junction waits where turners wait for their
    # gap: it is due at the maximum red after it stopped, not after `stalled_turn_s`.
    head = SignalHead(phases, rules)
    shown = []
    for t in range(200):
        if t % 4 == 0:
            head.stall({}, {1: 20.0} if t >= 20 and head.phase == 0 else {})
        shown.append(head.tick(float(t), demand))
    first = shown.index(phases[1])
    assert 20 + rules.max_red_s - rules.yellow_s - rules.clear_extension_s <= first
    assert first <= 20 + rules.max_red_s


def test_all_red_is_held_while_the_junction_box_is_occupied_up_to_the_cap() -> None:
    rules = SafetyRules(min_green_s=5, yellow_s=3, all_red_s=0, clear_extension_s=2)

    def red_seconds(box: list[bool]) -> int:
        states = _run(rules, [1] * 20, [[True] * WIDTH] * 20, box)
        return sum(1 for s in states if s == all_red_state(PHASES[0], PHASES[1]))

    assert red_seconds([True] * 20) == 0  # box clear: the network's own (zero) all-red
    assert red_seconds([True] * 8 + [False] + [True] * 11) == 1  # held until it cleared
    assert red_seconds([False] * 20) == 2  # never clears: the cap, then the green goes on


def test_transition_states_keep_common_greens_and_clear_the_rest() -> None:
    assert yellow_state("GGrr", "GrGG") == "Gyrr"
    assert all_red_state("GGrr", "GrGG") == "Grrr"


def test_rules_refuse_unsafe_timing() -> None:
    with pytest.raises(ValueError, match="min_green_s"):
        SafetyRules(yellow_s=0)
    with pytest.raises(ValueError, match="max_red_s"):
        SafetyRules(max_red_s=5)
    with pytest.raises(ValueError, match="stalled_turn_s"):
        SafetyRules(stalled_turn_s=0)


@settings(max_examples=80, deadline=None)
@given(rules=rules_strategy, data=st.data())
def test_skipping_quiet_ticks_shows_the_same_signal_states(
    rules: SafetyRules, data: st.DataObject
) -> None:
    # The twin ticks a head only when `quiet_until` says its state may change, reads the box
    # only when `needs_box`, and gives demand only for the `late_links` (the max-red rule's
    # candidates). Wishes and demand change only at decision times, as in the twin, and a
    # head given a new wish or demand is ticked when `quiet_until` says it may change, not at
    # once: the states shown must be exactly those of a head ticked every second with full
    # demand.
    interval = data.draw(st.integers(1, 6))
    plan = data.draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2 ** WIDTH - 1)),
                              min_size=5, max_size=60))
    boxes = data.draw(st.lists(st.booleans(), min_size=len(plan) * interval,
                               max_size=len(plan) * interval))
    every, lazy = SignalHead(PHASES, rules), SignalHead(PHASES, rules)
    shown_every: list[str] = []
    shown_lazy: list[str] = []
    state = PHASES[0]
    wake, lazy_demand = 0.0, None
    for t in range(len(plan) * interval):
        now = float(t)
        wish, mask = plan[t // interval]
        demand = _mask(mask)
        if t % interval == 0:
            every.request(wish)
            late = lazy.late_links(now + interval)
            late_demand = [i in late and demand[i] for i in range(WIDTH)] if late else None
            if wish != lazy.requested or late_demand != lazy_demand:  # else its wake stands
                lazy.request(wish)
                lazy_demand = late_demand
                wake = max(lazy.quiet_until(lazy_demand), now)  # not now: when it may change
        shown_every.append(every.tick(now, demand, boxes[t]))
        if wake <= now:
            box = boxes[t] if lazy.needs_box(now) else True
            state = lazy.tick(now, lazy_demand, box)
            wake = max(lazy.quiet_until(lazy_demand), now + 1)
        shown_lazy.append(state)
    assert shown_lazy == shown_every
