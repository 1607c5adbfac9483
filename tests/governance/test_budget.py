"""Privacy budgets on both back-ends: charges add up, overspending is refused, and concurrent
charges never spend more than the total."""

from __future__ import annotations

import contextlib
import threading

import pytest

from cityhub.governance.budget import BudgetExhausted, PrivacyBudgets
from cityhub.store.database import Database, open_database


def test_charges_add_up_and_overspending_is_refused(db: Database) -> None:
    budgets = PrivacyBudgets(db, total=1.0)
    budgets.charge("", "air", 0.4, "a", "count(pm25)")
    budgets.charge("", "air", 0.6, "a", "mean(pm25)")
    with pytest.raises(BudgetExhausted, match="0 of its privacy budget left"):
        budgets.charge("", "air", 0.01, "a", "count(pm25)")
    state = budgets.state("", "air")
    assert (state.spent, state.remaining, state.queries) == (1.0, 0.0, 2)
    assert budgets.state("other-tenant", "air").spent == 0.0
    assert budgets.state("", "traffic").remaining == 1.0


def test_concurrent_charges_never_overspend(db: Database, store_url: str) -> None:
    PrivacyBudgets(db, total=1.0)
    granted: list[float] = []

    def spender() -> None:
        own = open_database(store_url) if db.dialect == "postgres" else db
        budgets = PrivacyBudgets(own, total=1.0)
        try:
            for _ in range(5):
                with contextlib.suppress(BudgetExhausted):
                    granted.append(budgets.charge("", "air", 0.1, "t", "count").spent)
        finally:
            if own is not db:
                own.close()

    threads = [threading.Thread(target=spender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 10
    assert PrivacyBudgets(db, total=1.0).state("", "air").spent == pytest.approx(1.0)
