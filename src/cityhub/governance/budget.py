"""Per-dataset privacy budgets: every differentially private answer spends epsilon, recorded as
one row; a query that would overspend is refused before anything is computed.

Table `privacy_spend (tenant, dataset, epsilon, at, actor, query)` is only ever inserted into.
Charges run in a write transaction (on PostgreSQL under an advisory lock per dataset), so two
hub processes cannot both spend the last of a budget.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cityhub.store.database import Connection, Database

_DDL_LOCK = 0x70726976  # "priv"


class BudgetExhausted(Exception):
    """The dataset's privacy budget cannot pay for the query."""

    def __init__(self, dataset: str, asked: float, remaining: float) -> None:
        super().__init__(f"dataset {dataset!r} has {remaining:.6g} of its privacy budget left; "
                         f"the query asks for epsilon {asked:.6g}")
        self.dataset = dataset
        self.asked = asked
        self.remaining = remaining


@dataclass(frozen=True, slots=True)
class BudgetState:
    dataset: str
    total: float
    spent: float
    queries: int

    @property
    def remaining(self) -> float:
        return max(0.0, self.total - self.spent)


def ddl(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgres" else "REAL"
    return [
        f"""CREATE TABLE IF NOT EXISTS privacy_spend (
            tenant TEXT NOT NULL, dataset TEXT NOT NULL, epsilon {real} NOT NULL,
            at TEXT NOT NULL, actor TEXT NOT NULL, query TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS privacy_spend_dataset ON privacy_spend (tenant, dataset)",
    ]


class PrivacyBudgets:
    """Budgets of every dataset, `total` epsilon each (see module docstring)."""

    def __init__(self, db: Database, total: float) -> None:
        self.db = db
        self.total = total
        with db.transaction(write=True) as conn:
            if db.dialect == "postgres":  # CREATE IF NOT EXISTS races between processes
                conn.execute("SELECT pg_advisory_xact_lock(?)", (_DDL_LOCK,))
            for statement in ddl(db.dialect):
                conn.execute(statement)

    def _state(self, conn: Connection, tenant: str, dataset: str) -> BudgetState:
        row = conn.execute("SELECT COALESCE(SUM(epsilon), 0), COUNT(*) FROM privacy_spend "
                           "WHERE tenant = ? AND dataset = ?", (tenant, dataset)).fetchone()
        return BudgetState(dataset, self.total, float(row[0]), int(row[1]))

    def state(self, tenant: str, dataset: str) -> BudgetState:
        with self.db.transaction(write=False) as conn:
            return self._state(conn, tenant, dataset)

    def charge(self, tenant: str, dataset: str, epsilon: float, actor: str,
               query: str) -> BudgetState:
        """Spend `epsilon` or raise BudgetExhausted; returns the state after the charge."""
        with self.db.transaction(write=True) as conn:
            if self.db.dialect == "postgres":
                key = zlib.crc32(f"privacy\x00{tenant}\x00{dataset}".encode())
                conn.execute("SELECT pg_advisory_xact_lock(?)", (key,))
            state = self._state(conn, tenant, dataset)
            # A relative tolerance, so that spending exactly the rest is allowed.
            if state.spent + epsilon > self.total * (1 + 1e-9):
                raise BudgetExhausted(dataset, epsilon, state.remaining)
            conn.execute("INSERT INTO privacy_spend (tenant, dataset, epsilon, at, actor, query) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (tenant, dataset, epsilon, datetime.now(UTC).isoformat(), actor, query))
        return BudgetState(dataset, self.total, state.spent + epsilon, state.queries + 1)
