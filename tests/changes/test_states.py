"""The change-request state machine: hypothesis explores transition sequences against the one table."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mopsbot.audit import events_for
from mopsbot.changes.states import STATES, TERMINAL, TRANSITIONS, InvalidTransition, transition
from mopsbot.store.db import Store
from mopsbot.store.models import ChangeRequest

START_URL = None


class ChangeRequestMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = Store.open(START_URL)  # type: ignore[arg-type]
        self.n = getattr(ChangeRequestMachine, "_counter", 0) + 1
        ChangeRequestMachine._counter = self.n  # type: ignore[attr-defined]
        self.cr_id = f"CR-{self.n:06d}"
        with self.store.session() as s:
            s.add(
                ChangeRequest(
                    id=self.cr_id,
                    change_type="normal",
                    title="t",
                    description="d",
                    affected_systems=["Marketo"],
                    risk="low",
                    requester_id="U1",
                )
            )
        self.expected = "draft"
        self.applied = 0

    @rule(to=st.sampled_from(STATES), reason=st.sampled_from([None, "", "because"]))
    def try_transition(self, to: str, reason: str | None) -> None:
        allowed = to in TRANSITIONS[self.expected] and not (
            to in ("rejected", "cancelled", "failed") and not (reason or "").strip()
        )
        try:
            with self.store.session() as s:
                cr = s.get(ChangeRequest, self.cr_id)
                transition(s, cr, to, "U2", reason)  # type: ignore[arg-type]
        except InvalidTransition:
            assert not allowed
            return
        assert allowed
        self.expected = to
        self.applied += 1

    @invariant()
    def state_matches_and_every_transition_is_audited(self) -> None:
        with self.store.session() as s:
            assert s.get(ChangeRequest, self.cr_id).state == self.expected  # type: ignore[union-attr]
            events = events_for(s, "change_request", self.cr_id)
            assert len(events) == self.applied
            for e in events:
                assert e.data["to"] in TRANSITIONS[e.data["from"]]  # type: ignore[index]

    @invariant()
    def terminal_states_have_no_way_out(self) -> None:
        if self.expected in TERMINAL:
            assert not TRANSITIONS[self.expected]


def test_state_machine(tmp_path: Path) -> None:
    global START_URL
    START_URL = f"sqlite:///{tmp_path / 'cr.db'}"
    Store.open(START_URL).close()
    machine = ChangeRequestMachine.TestCase
    machine.settings = settings(
        max_examples=60, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    machine().runTest()


def test_every_state_is_reachable_from_draft() -> None:
    seen, frontier = {"draft"}, ["draft"]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(STATES)
