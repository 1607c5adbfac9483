"""Group commit: single writes from concurrent requests share one transaction and one commit.

For SQLite (the SQL store uses it there only; see SqlStore.__init__). A commit is the dear
part of a small write (the WAL append, page writes and checkpoints), and with one writer at a
time, updates/s = 1 / commit latency. Here every write is
queued to one writer thread. The thread takes whatever is queued, opens one transaction, runs
each write inside its own SAVEPOINT and commits once; each caller is answered only after the
commit, so a write that returned is as durable as before. A write that fails (its mutation
raises, or its SQL does) is rolled back to its savepoint and its caller gets the error; its
neighbours in the batch are not affected. Writes run in the order they were queued, so the
order of writes to one entity is kept. Only a failing COMMIT fails the whole batch.

Each write runs in its caller's `contextvars` context, so a listener that reads a context
variable the caller set (the temporal and device stores do) sees it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from cityhub.store.database import Connection, Database, StoreClosed

T = TypeVar("T")


class _Write(Generic[T]):
    """One queued write; its caller waits on `done` (a thread) or `future` (a coroutine)."""

    __slots__ = ("context", "done", "error", "future", "result", "work")

    def __init__(self, work: Callable[[Connection], T],
                 future: asyncio.Future[T] | None = None) -> None:
        self.work = work
        self.context = contextvars.copy_context()
        self.future = future
        self.done = threading.Event() if future is None else None
        self.result: T | None = None
        self.error: BaseException | None = None


def _settle(writes: list[_Write[Any]]) -> None:
    """Answer the coroutines of a committed batch (on their event loop)."""
    for write in writes:
        assert write.future is not None
        if write.future.cancelled():
            continue
        if write.error is not None:
            write.future.set_exception(write.error)
        else:
            write.future.set_result(write.result)


class GroupCommitter:
    """The writer thread of one database (see module docstring)."""

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: deque[_Write[Any]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0  # group transactions committed

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a group transaction and return its result once that has committed."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a write from inside a write would wait for itself")
        write = _Write(work)
        self._enqueue(write)
        assert write.done is not None
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    async def run_async(self, work: Callable[[Connection], T]) -> T:
        """`run` for a coroutine: the event loop is not blocked and no worker thread waits
        (a thread hand-off per request cost about as much as the write itself)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Write(work, future))
        return await future

    def _enqueue(self, write: _Write[Any]) -> None:
        with self._wake:
            if self._closed:
                raise StoreClosed("the store is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="cityhub-writer",
                                                daemon=True)
                self._thread.start()
            self._queue.append(write)
            self._wake.notify()

    def pending(self) -> int:
        """Writes queued and not yet taken by the writer."""
        with self._wake:
            return len(self._queue)

    def close(self) -> None:
        """Refuse new writes, finish those queued, stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                batch = [self._queue.popleft()
                         for _ in range(min(len(self._queue), self._max_batch))]
            self._commit(batch)

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            with self._db.transaction(write=True) as conn:
                for write in batch:
                    self._one(conn, write)
            self.commits += 1
        except BaseException as error:  # BEGIN or COMMIT failed: the batch did not land
            for write in batch:
                if write.error is None:
                    write.error = error
        finally:
            waiting: dict[asyncio.AbstractEventLoop, list[_Write[Any]]] = {}
            for write in batch:
                if write.done is not None:
                    write.done.set()
                else:
                    assert write.future is not None
                    waiting.setdefault(write.future.get_loop(), []).append(write)
            for loop, writes in waiting.items():  # one wake-up per loop and batch
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, writes)

    @staticmethod
    def _one(conn: Connection, write: _Write[Any]) -> None:
        conn.execute("SAVEPOINT group_write")
        try:
            write.result = write.context.run(write.work, conn)
        except Exception as error:
            conn.execute("ROLLBACK TO SAVEPOINT group_write")
            write.error = error
        conn.execute("RELEASE SAVEPOINT group_write")
